"""InfoGAN: the contract suite, codes through the kernel's mechanism (step, checkpoint, sample), the
information term trained by both players, the paper's grid, misuse as one line."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.codes import codes_from_json
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError
from gancore.inference import draw, load_model, sample_codes
from gancore.interfaces import Batch, StepContext
from gancore.testing import SMALL, VariantContract, built, make_config, train, weights

#: SMALL without its image size, for vector data
VECTOR = {k: v for k, v in SMALL.items() if k != "data.image_size"}
TINY = {"variant.generator_width": 4, "variant.critic_width": 4, "variant.q_hidden": 8, "variant.hidden": 8}


class TestInfoGANContract(VariantContract):
    variant = "infogan"
    overrides = TINY


def test_defaults_are_the_papers():
    cfg = resolve(load_plugins(), build_raw("infogan"))
    v = cfg.variant
    assert (v.categories, v.continuous, v.noise_dim, v.info_weight) == (10, 2, 16, 1.0)
    assert cfg.optim.generator.lr == 1e-3 and cfg.optim.critic.lr == 2e-4
    assert cfg.optim.generator.betas == cfg.optim.critic.betas == (0.5, 0.999)
    assert cfg.train.ema == 0.999  # samples from the average: the raw generator's code reading swings


def test_samples_come_from_the_ema_generator_and_resume_keeps_it(tmp_path):
    host = load_plugins()
    over = {**SMALL, **TINY, "log.checkpoint_every": 2}
    straight = train(host, make_config(host, "infogan", {**over, "train.steps": 4}), tmp_path / "a")
    assert straight.built.ema is not None and straight.built.generator() is straight.built.ema
    assert any(k.startswith("ema.") for k in weights(straight))
    train(host, make_config(host, "infogan", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "infogan", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    off = make_config(host, "infogan", {**over, "train.ema": None})
    assert off.train.ema is None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    host = load_plugins()
    out = tmp_path_factory.mktemp("infogan") / "run"
    cfg = make_config(host, "infogan", {**SMALL, **TINY, "train.steps": 3, "log.sample_every": 3, "log.samples": 20})
    return host, train(host, cfg, out), out


def test_codes_sit_beside_the_noise_and_reach_the_checkpoint(run):
    host, trainer, out = run
    g = trainer.built.nets.generator
    assert g.latent_dim == 16 and g.sample_latent(3).shape == (3, 16)  # the noise alone
    assert [(c.name, c.kind, c.size) for c in g.codes] == [("category", "categorical", 10), ("c1", "uniform", 1),
                                                           ("c2", "uniform", 1)]
    ckpt = next((out / "checkpoints").glob("*.safetensors"))
    with safe_open(str(ckpt), "pt") as f:
        assert codes_from_json(f.metadata()["codes"]) == g.codes
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    # L_I is minimised by both players: Q in the critic's phase, G in its own
    assert {"critic/info_cat", "critic/info_cont", "generator/info_cat", "generator/info_cont"} <= set(record)


def test_both_players_learn_from_the_information_term():
    """The Q head's weights move only through L_I; the generator gets a gradient from it too."""
    run = built(load_plugins(), "infogan", {**SMALL, **TINY})
    variant, nets = run.variant, run.nets
    ctx = StepContext(step=0, device=torch.device("cpu"), rng=torch.Generator().manual_seed(0))
    batch = Batch(x=torch.zeros(8, 1, 16, 16))
    out = variant.generator_step(nets, batch, ctx)
    out.terms["info_cat"].backward()
    assert nets.generator.fc[0].weight.grad.abs().sum() > 0
    for _, net in nets.items():
        net.zero_grad(set_to_none=True)
    out = variant.critic_step(nets, batch, ctx)
    out.terms["info_cat"].backward()
    assert nets.critic.q[0].weight.grad.abs().sum() > 0 and nets.critic.body.features[0].weight.grad.abs().sum() > 0


def test_the_real_code_term_is_minus_the_information_of_q_on_real_images():
    """variant.real_code_weight: E H[Q(c|x)] - H[E Q(c|x)] over the real batch, weighted; it moves Q and the
    body, not the generator; -log K when every image is read as one category and the batch uses all K."""
    host = load_plugins()
    run = built(host, "infogan", {**SMALL, **TINY, "variant.real_code_weight": 0.5})
    variant, nets = run.variant, run.nets
    ctx = StepContext(step=0, device=torch.device("cpu"), rng=torch.Generator().manual_seed(0))
    batch = Batch(x=torch.rand(8, 1, 16, 16) * 2 - 1)
    out = variant.critic_step(nets, batch, ctx)
    p = torch.softmax(nets.critic(batch.x).code_logits, 1)
    marginal = p.mean(0)
    expected = 0.5 * ((-(p * p.log()).sum(1)).mean() + (marginal * marginal.log()).sum())
    torch.testing.assert_close(out.terms["real_code"], expected, rtol=1e-4, atol=1e-5)
    for _, net in nets.items():
        net.zero_grad(set_to_none=True)
    out.terms["real_code"].backward()
    assert nets.critic.q[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in nets.generator.parameters())
    off = built(host, "infogan", {**SMALL, **TINY})
    assert "real_code" not in off.variant.critic_step(off.nets, batch, ctx).terms


def test_fixed_code_changes_only_that_code(run):
    host, _, out = run
    model, _ = load_model(host, out)
    a, _ = draw(model, 6, seed=3, codes=sample_codes(model, 6, 4))
    b, _ = draw(model, 6, seed=3, codes=sample_codes(model, 6, 7))
    c, _ = draw(model, 6, seed=3, codes=sample_codes(model, 6, 4))
    assert torch.equal(a, c) and not torch.equal(a, b)  # same noise and continuous codes, another class
    free, _ = draw(model, 6, seed=3)
    assert free.shape == a.shape


def test_sample_code_cli_and_misuse_is_one_line(run, tmp_path):
    host, _, out = run
    cli_run = CliRunner().invoke(cli, ["sample", str(out), "--n", "5", "--code", "3", "--out",
                                       str(tmp_path / "c3.safetensors")])
    assert cli_run.exit_code == 0, cli_run.output
    bad = CliRunner().invoke(cli, ["sample", str(out), "--n", "5", "--code", "10", "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "--code: code 'category' has classes 0..9, got 10" in bad.output
    assert "Traceback" not in bad.output


def test_code_on_a_run_without_codes_is_one_line(tmp_path):
    host = load_plugins()
    train(host, make_config(host, "dcgan", {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4,
                                            "train.steps": 1}), tmp_path / "dcgan")
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "dcgan"), "--code", "1", "--out",
                                      str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "--code: variant 'dcgan' has no categorical code" in result.output


def test_the_progress_grid_is_the_papers_picture(run):
    host, trainer, _ = run
    variant, g = trainer.built.variant, trainer.built.nets.generator
    g.eval()
    with torch.no_grad():
        images, per_row = variant.preview(g, None, 20, rng=torch.Generator().manual_seed(0),
                                          device=torch.device("cpu"))
    assert per_row == 2 and images.shape[0] == 20  # 10 rows (one per class) x 2 columns (c1 = -1, 1)
    rows = images.view(10, 2, -1)
    assert not torch.equal(rows[0, 0], rows[0, 1]) and not torch.equal(rows[0, 0], rows[1, 0])


def test_misuse_is_a_config_error(tmp_path):
    host = load_plugins()
    with pytest.raises(ConfigError, match="InfoGAN needs at least one code"):
        train(host, make_config(host, "infogan", {**SMALL, **TINY, "variant.categories": 0,
                                                  "variant.continuous": 0}), tmp_path / "a")
    with pytest.raises(ConfigError, match="at least 2 classes"):
        train(host, make_config(host, "infogan", {**SMALL, **TINY, "variant.categories": 1}), tmp_path / "b")
    with pytest.raises(ConfigError, match="infogan needs image data"):
        train(host, make_config(host, "infogan", {**VECTOR, **TINY, "data.name": "gaussian-ring"}), tmp_path / "c")
    assert not (tmp_path / "a").exists()


def test_continuous_only_and_resume_exact(tmp_path):
    host = load_plugins()
    over = {**SMALL, **TINY, "variant.categories": 0, "log.checkpoint_every": 2}
    straight = train(host, make_config(host, "infogan", {**over, "train.steps": 4}), tmp_path / "a")
    train(host, make_config(host, "infogan", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "infogan", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_trains_on_a_users_image_folder(tmp_path):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    host = load_plugins()
    cfg = make_config(host, "infogan", {**SMALL, **TINY, "data.name": "image-folder", "data.path": str(folder)})
    assert cfg.data.image_size == 16  # SMALL's; the 16 the variant sets is the digits' only
    trainer = train(host, cfg, tmp_path / "run")
    assert trainer.spec.shape == (3, 16, 16)
    x, _ = draw(load_model(host, tmp_path / "run")[0], 4, codes={"category": torch.tensor([0, 1, 2, 3])})
    assert x.shape == (4, 3, 16, 16) and torch.isfinite(x).all()
