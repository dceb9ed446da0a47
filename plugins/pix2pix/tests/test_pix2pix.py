"""pix2pix: the paper's set-up, a conditional critic on (input, output), paired data from the built-in
digits and from the user's files in both layouts, translate one way, exact resume, clear misuse errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, preset_settings, resolve
from gancore.errors import ConfigError
from gancore.nets.unet import KeptDropout
from gancore.testing import SMALL, make_config, train, weights
from gancore.translation.sources import DigitsRestore

TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4, "train.batch_size": 4, "log.samples": 3}


def test_defaults_are_the_papers():
    cfg = resolve(load_plugins(), build_raw("pix2pix"))
    assert cfg.data_cls.name == "digits-restore" and cfg.loss_cls.name == "nonsaturating"
    assert cfg.variant.l1_weight == 100 and cfg.variant.dropout == 0.5 and cfg.variant.norm == "instance"
    for opt in (cfg.optim.generator, cfg.optim.critic):
        assert (opt.name, opt.lr, opt.betas, opt.schedule, opt.decay_start) == (
            "adam", 2e-4, (0.5, 0.999), "linear", 0.5)
    host = load_plugins()
    facades = resolve(host, build_raw("pix2pix", preset=preset_settings(host, "pix2pix", "facades")),
                      ["data.name=pack", "data.path=facades.pack"])
    assert facades.train.batch_size == 1 and facades.data.image_size == 256 and facades.variant.critic_layers == 3


def test_the_built_in_pairs_are_blurred_and_sharp_digits():
    data = DigitsRestore(DigitsRestore.Config(split="test")).load()
    assert data.paired and data.x.shape == data.x_b.shape == (360, 1, 32, 32)
    assert torch.equal(data.y, data.y_b)
    assert (data.x - data.x_b).abs().mean() > 0.1  # far from the identity map
    assert data.x.std() < data.x_b.std()  # the blur spreads the strokes


def test_unet_to_one_by_one_critic_on_the_pair_and_dropout_kept_at_test_time(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "pix2pix", TINY), tmp_path / "run")
    g, d = trainer.built.nets.generator, trainer.built.nets.critic
    side = trainer.spec.shape[-1]
    assert 2 ** len(g.down) == side  # down to a 1x1 bottleneck
    assert d.net[0].in_channels == 2  # input and output together
    assert sum(isinstance(m, KeptDropout) for m in g.modules()) == 3
    g.eval()
    x = torch.zeros(2, 1, side, side)
    assert not torch.equal(g(x), g(x))  # the noise stays on at test time
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"critic/adv", "generator/adv", "generator/l1"} <= set(record)


def test_the_l1_only_baseline_has_no_critic(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "pix2pix", {**TINY, "variant.adversarial": False}), tmp_path / "run")
    assert trainer.built.nets.critic is None and set(trainer.updaters) == {"generator"}
    with pytest.raises(ConfigError, match="variant.l1_weight"):
        train(host, make_config(host, "pix2pix", {**TINY, "variant.adversarial": False, "variant.l1_weight": 0}),
              tmp_path / "none")


def test_resume_is_exact(tmp_path):
    host = load_plugins()
    over = {**TINY, "log.checkpoint_every": 2}
    straight = train(host, make_config(host, "pix2pix", {**over, "train.steps": 4}), tmp_path / "a")
    train(host, make_config(host, "pix2pix", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "pix2pix", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_translate_one_way_and_misuse_is_one_line(tmp_path):
    host = load_plugins()
    train(host, make_config(host, "pix2pix", TINY), tmp_path / "run")
    blurred = DigitsRestore(DigitsRestore.Config(split="test", image_size=16)).load().x[:5]
    np.save(tmp_path / "in.npy", blurred.numpy())
    ok = CliRunner().invoke(cli, ["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in.npy"),
                                  "--out", str(tmp_path / "out.npy")])
    assert ok.exit_code == 0, ok.output
    assert np.load(tmp_path / "out.npy").shape == (5, 1, 16, 16)
    back = CliRunner().invoke(cli, ["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in.npy"),
                                    "--out", str(tmp_path / "b.npy"), "--direction", "b2a"])
    assert back.exit_code == 2 and "one way" in back.output and len(back.output.strip().splitlines()) == 1
    sample = CliRunner().invoke(cli, ["sample", str(tmp_path / "run"), "--n", "2", "--out", str(tmp_path / "s.png")])
    assert sample.exit_code == 2 and "gancore translate" in sample.output
    unpaired = CliRunner().invoke(cli, ["run", "pix2pix", "--out", str(tmp_path / "u"),
                                        "--set", "data.name=digits-pair"])
    assert unpaired.exit_code == 2 and "aligned image pairs" in unpaired.output
    assert len(unpaired.output.strip().splitlines()) == 1


@pytest.mark.parametrize("layout", ["side-by-side", "folders"])
def test_user_pairs_in_both_layouts_train_with_the_same_random_crop_on_both(tmp_path, layout):
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for i in range(6):
        a = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        b = 255 - a
        if layout == "side-by-side":
            (root / "train").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.concatenate([a, b], axis=1)).save(root / "train" / f"{i}.png")
        else:
            for name, img in (("A", a), ("B", b)):
                (root / name / "train").mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / name / "train" / f"{i}.png")
    host = load_plugins()
    cfg = make_config(host, "pix2pix", {**TINY, "data.name": "paired", "data.path": str(root), "data.image_size": 16,
                                        "data.crop": "random", "data.load_size": 20})
    trainer = train(host, cfg, tmp_path / "run")
    assert trainer.spec.shape == (3, 16, 16) and trainer.spec.paired
    batch = trainer.sampler.next()
    # B is A inverted, so the same square and flip on both halves shows as x + x_b == 0 (in [-1, 1])
    assert torch.allclose(batch.x + batch.x_b, torch.zeros_like(batch.x), atol=2 / 255 + 1e-6)
