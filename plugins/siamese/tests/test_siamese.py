"""Siamese GAN: vector critics through the kernel, both modes, pairs, translate, resume."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from gancore_siamese import margin_loss, transformation_vectors, travel_loss
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError
from gancore.inference import generate, load_model
from gancore.testing import SMALL, VariantContract, make_config, train, weights

TINY = {"variant.generator_width": 4, "variant.critic_width": 4, "variant.vec_len": 8}
TRANSLATE = {**SMALL, **TINY, "variant.mode": "translate", "variant.unet_depth": 2, "train.batch_size": 4,
             "log.samples": 3}


class TestSiameseGenerate(VariantContract):
    variant = "siamese"
    overrides = TINY


class TestSiameseTranslate(VariantContract):
    variant = "siamese"
    overrides = {**TINY, "variant.mode": "translate", "variant.unet_depth": 2}

    def test_trains_and_samples(self, host, tmp_path):
        """Translation runs have no noise to sample from: they train, then translate."""
        cfg = self.config(host)
        trainer = train(host, cfg, tmp_path / "run")
        assert trainer.step == cfg.train.steps
        record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
        assert {"critic/adv", "critic/travel", "critic/margin", "generator/adv", "generator/travel"} <= set(record)
        with pytest.raises(ConfigError, match="gancore translate"):
            generate(host, tmp_path / "run", n=3, seed=1)


def test_defaults_follow_the_mode():
    host = load_plugins()
    gen = resolve(host, build_raw("siamese"))
    tr = resolve(host, build_raw("siamese"), ["variant.mode=translate"])
    assert gen.data_cls.name == "digits" and tr.data_cls.name == "digits-pair"
    for cfg in (gen, tr):
        assert cfg.loss_cls.name == "siamese-anchor" and cfg.variant.vec_len == 64
        assert [cls.name for cls, _ in cfg.regularizers] == ["spectral-norm"]
        assert cfg.optim.critic.lr == 4 * cfg.optim.generator.lr  # TTUR


@st.composite
def batches(draw):
    n, d = draw(st.integers(2, 7)), draw(st.integers(1, 5))
    values = draw(st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=n * d, max_size=n * d))
    return torch.tensor(values).reshape(n, d)


@settings(max_examples=50, deadline=None)
@given(s=batches())
def test_transformation_vectors_are_every_pair_once(s):
    v = transformation_vectors(s)
    n = len(s)
    assert v.shape == (n * (n - 1) // 2, s.shape[1])
    expected = torch.stack([s[i] - s[j] for i in range(n) for j in range(i + 1, n)])
    assert torch.equal(v, expected)


@settings(max_examples=50, deadline=None)
@given(s=batches(), shift=st.floats(-3, 3), scale=st.floats(0.1, 4))
def test_travel_loss_is_zero_for_a_translation_and_positive_otherwise(s, shift, scale):
    v = transformation_vectors(s)
    assume(v.norm(dim=1).min() > 1e-2)  # a pair of equal encodings has no direction to compare
    assert travel_loss(s, s + shift, 1.0) < 1e-4  # every encoding moved by the same vector
    scaled = travel_loss(s, s * scale, 0.0)  # same directions: cosine term only
    assert scaled < 1e-4
    if abs(scale - 1) > 0.1:
        assert travel_loss(s, s * scale, 1.0) > 0  # the distance term sees the change of length
    assert travel_loss(s, -s, 0.0) == pytest.approx(2.0, abs=1e-4)  # every vector reversed


def test_margin_loss_pushes_pairs_apart_up_to_the_margin():
    same = torch.zeros(4, 3)
    assert margin_loss(same, 1.0) == pytest.approx(1.0)
    apart = torch.eye(4, 3) * 10
    assert margin_loss(apart, 1.0) == 0


def test_generate_critic_outputs_vectors_and_logs_distances(tmp_path):
    host = load_plugins()
    cfg = make_config(host, "siamese", {**SMALL, **TINY, "variant.vec_len": 5})
    trainer = train(host, cfg, tmp_path / "run")
    out = trainer.built.nets.critic(torch.zeros(3, 1, 16, 16))
    assert out.shape == (3, 5)
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"critic/real_distance", "critic/fake_distance"} <= set(record)


@pytest.mark.parametrize("reg", ["gradient-penalty", "r1"])
def test_penalties_work_on_vector_critics(tmp_path, reg):
    host = load_plugins()
    cfg = make_config(host, "siamese", {**SMALL, **TINY, "regularizers": [{"name": reg, "weight": 1.0}]})
    train(host, cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record[f"critic/{reg}"] > 0


def test_self_attention_builds_in_both_players(tmp_path):
    host = load_plugins()
    for mode in ("generate", "translate"):
        over = TRANSLATE if mode == "translate" else {**SMALL, **TINY}
        trainer = train(host, make_config(host, "siamese", {**over, "variant.self_attention": True}), tmp_path / mode)
        for net in (trainer.built.nets.generator, trainer.built.nets.critic):
            assert any(type(m).__name__ == "SelfAttention" for m in net.modules())


def test_contrastive_loss_trains_through_the_kernel(tmp_path):
    host = load_plugins()
    cfg = make_config(host, "siamese", {**SMALL, **TINY, "loss.name": "contrastive"})
    train(host, cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert torch.isfinite(torch.tensor(record["generator/adv"]))


def test_translate_mode_resumes_exactly(tmp_path):
    host = load_plugins()
    over = {**TRANSLATE, "log.checkpoint_every": 2}
    straight = train(host, make_config(host, "siamese", {**over, "train.steps": 4}), tmp_path / "a")
    train(host, make_config(host, "siamese", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "siamese", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gancore_translate_runs_a2b_and_refuses_b2a(tmp_path):
    import numpy as np

    host = load_plugins()
    train(host, make_config(host, "siamese", TRANSLATE), tmp_path / "run")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 16, 16)).astype("float32")
    np.save(tmp_path / "in.npy", x)
    runner = CliRunner()
    result = runner.invoke(cli, ["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in.npy"),
                                 "--out", str(tmp_path / "out.npy")])
    assert result.exit_code == 0, result.output
    model, _ = load_model(host, tmp_path / "run")
    with torch.no_grad():
        expected = model.nets.generator(torch.from_numpy(x))
    assert np.allclose(np.load(tmp_path / "out.npy"), expected.numpy(), atol=1e-5)
    result = runner.invoke(cli, ["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in.npy"),
                                 "--out", str(tmp_path / "back.npy"), "--direction", "b2a"])
    assert result.exit_code == 2 and "a2b" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "back.npy").exists()


@pytest.mark.parametrize("sets, match", [
    (["data.name=digits-pair"], "generate mode needs one image domain"),
    (["variant.mode=translate", "data.name=digits"], "two unpaired image domains"),
    (["data.name=gaussian-ring"], "needs image data"),
    (["variant.mode=translate", "variant.unet_depth=6"], "needs a multiple of 64"),
])
def test_mode_and_data_mismatches_are_one_line_errors(tmp_path, sets, match):
    args = ["run", "siamese", "--out", str(tmp_path / "run"), "--set", "log.progress=false"]
    result = CliRunner().invoke(cli, args + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 2, result.output
    assert match in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_translate_mode_puts_the_found_orientation_in_front_of_g(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "siamese", {**TRANSLATE, "data.b_style": "rotate"}), tmp_path / "t")
    g = trainer.built.nets.generator
    x = torch.randn(2, 1, 16, 16)
    assert g.active and torch.equal(g(x), g.net(torch.rot90(x, 1, dims=(2, 3))))
    assert '"angle": 90.0' in (tmp_path / "t" / "init.json").read_text()
    train(host, make_config(host, "siamese", {**SMALL, **TINY}), tmp_path / "g")  # generate mode: no search
    assert not (tmp_path / "g" / "init.json").exists()


def test_auto_keeps_fp32_when_generating_and_bf16_may_translate():
    host = load_plugins()
    siamese = host.variants.get("siamese")
    assert siamese.capabilities(make_config(host, "siamese", {}).variant).auto_bf16 is False
    assert siamese.capabilities(make_config(host, "siamese", {"variant.mode": "translate"}).variant).auto_bf16
