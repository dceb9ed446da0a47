"""WGAN: both modes through the contract suite, the papers' defaults, vector data, logging."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError
from gancore.testing import SMALL, VariantContract, make_config, train

TINY = {"variant.generator_width": 4, "variant.critic_width": 4}


class TestWGANGPContract(VariantContract):
    variant = "wgan"
    overrides = {**TINY, "variant.mode": "gp"}


class TestWGANClipContract(VariantContract):
    variant = "wgan"
    overrides = {**TINY, "variant.mode": "clip"}


def test_gp_defaults_are_the_papers():
    cfg = resolve(load_plugins(), build_raw("wgan"), ["variant.mode=gp"])
    assert cfg.loss_cls.name == "wasserstein" and cfg.train.n_critic == 5
    for opt in (cfg.optim.generator, cfg.optim.critic):
        assert (opt.name, opt.lr, opt.betas) == ("adam", 1e-4, (0.0, 0.9))
    assert [(c.name, s.weight) for c, s in cfg.regularizers] == [("gradient-penalty", 10.0)]


def test_clip_defaults_are_the_papers():
    cfg = resolve(load_plugins(), build_raw("wgan"), ["variant.mode=clip"])
    for opt in (cfg.optim.generator, cfg.optim.critic):
        assert (opt.name, opt.lr, opt.momentum) == ("rmsprop", 5e-5, 0.0)
    assert [(c.name, s.clip) for c, s in cfg.regularizers] == [("weight-clip", 0.01)]
    assert cfg.train.n_critic == 5


def test_gp_refuses_batchnorm_in_the_critic():
    with pytest.raises(ConfigError, match="variant: critic_norm: batch norm breaks the per-sample gradient penalty"):
        resolve(load_plugins(), build_raw("wgan"), ["variant.critic_norm=batch"])


def test_gp_critic_has_no_batchnorm_and_a_linear_output(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "wgan", {**SMALL, **TINY}), tmp_path / "run")
    critic = trainer.built.nets.critic
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())
    assert isinstance(list(critic.modules())[-1], nn.Conv2d)  # no sigmoid: unbounded output


def test_clip_mode_keeps_critic_weights_clipped(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "wgan", {**SMALL, **TINY, "variant.mode": "clip"}), tmp_path / "run")
    assert max(p.abs().max().item() for p in trainer.built.nets.critic.parameters()) <= 0.01


def test_wasserstein_estimate_and_penalty_are_logged(tmp_path):
    host = load_plugins()
    train(host, make_config(host, "wgan", {**SMALL, **TINY}), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["critic/w_distance"] == pytest.approx(-record["critic/adv"], rel=1e-5)
    assert record["critic/gradient-penalty"] >= 0


@pytest.mark.parametrize("mode", ["gp", "clip"])
def test_trains_on_a_2d_mixture_with_mlps_and_a_scatter_plot(tmp_path, mode):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "wgan", "--out", str(out), "--set", f"variant.mode={mode}",
                                      "--set", "data.name=gaussian-ring", "--set", "train.steps=3",
                                      "--set", "train.batch_size=32", "--set", "variant.mlp_hidden=16",
                                      "--set", "log.progress=false", "--set", "log.scatter_points=100"])
    assert result.exit_code == 0, result.output
    from PIL import Image

    img = np.asarray(Image.open(out / "samples" / "step_0000003.png").convert("RGB"))
    assert img.shape == (512, 512, 3)
    assert ((img[..., 0] > 200) & (img[..., 1] < 80)).any(), "the true modes are drawn in red"
    assert ((img[..., 2] > 150) & (img[..., 0] < 80)).any(), "the samples are drawn in blue"
    result = CliRunner().invoke(cli, ["sample", str(out), "--n", "50", "--out", str(tmp_path / "p.npy")])
    assert result.exit_code == 0, result.output
    points = np.load(tmp_path / "p.npy")
    assert points.shape == (50, 2) and np.isfinite(points).all()
    ckpt_cfg = json.loads((out / "config.json").read_text())
    assert ckpt_cfg["variant"]["mode"] == mode


@pytest.mark.slow
def test_wgan_gp_learns_the_ring(tmp_path):
    """A short real run: samples move from the origin (untrained: |r - 2| = 1.8) towards the ring."""
    host = load_plugins()
    small = {k: v for k, v in SMALL.items() if k != "data.image_size"}
    cfg = make_config(host, "wgan", {**small, "data.name": "gaussian-ring", "train.steps": 400,
                                      "train.batch_size": 128, "variant.mlp_hidden": 64})
    train(host, cfg, tmp_path / "run")
    from gancore.inference import generate

    x, _ = generate(host, tmp_path / "run", n=1000)
    radius = x.norm(dim=1)
    assert (radius - 2).abs().mean() < 1.3, radius.median()
    assert ((radius - 2).abs() < 0.5).float().mean() > 0.15
    assert torch.isfinite(x).all()
