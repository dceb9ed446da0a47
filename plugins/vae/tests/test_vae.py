"""The VAE and the VAE-GAN: the contract suite for both, the ELBO's parts, Larsen et al.'s scheme of which
loss updates which network, samples from the prior, reconstructions through `gancore translate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gancore_vae.nets import kl_to_prior

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, resolve
from gancore.data.digits import Digits
from gancore.errors import ConfigError
from gancore.inference import load_model, translate_images
from gancore.interfaces import Batch, StepContext
from gancore.testing import SMALL, VariantContract, built, make_config, train

#: SMALL without its image size, for vector data
VECTOR = {k: v for k, v in SMALL.items() if k != "data.image_size"}
TINY = {"variant.generator_width": 4, "variant.encoder_width": 4, "variant.latent_dim": 4}


class TestVAEContract(VariantContract):
    variant = "vae"
    overrides = TINY


class TestVAEGANContract(VariantContract):
    variant = "vaegan"
    overrides = {**TINY, "variant.critic_width": 4}


def test_the_plain_vae_has_one_network_and_one_phase(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "vae", {**SMALL, **TINY}), tmp_path / "run")
    assert trainer.built.nets.critic is None and set(trainer.updaters) == {"generator"}
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"generator/recon", "generator/kl"} <= set(record) and not any(k.startswith("critic/") for k in record)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    mu, logvar = torch.zeros(5, 3), torch.zeros(5, 3)
    assert kl_to_prior(mu, logvar) == 0
    assert kl_to_prior(mu + 1, logvar) == pytest.approx(1.5)  # 0.5 * mu^2 summed over 3 dims


def _grads(variant, nets, phase, ctx, batch):
    for p in nets.generator.parameters():
        p.grad = None
    for _, net in nets.items():
        net.zero_grad(set_to_none=True)
    out = getattr(variant, f"{phase}_step")(nets, batch, ctx)
    sum(out.terms.values()).backward()
    return out, {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
                 for name, net in nets.items()}


def test_larsens_scheme_which_loss_updates_which_network():
    run = built(load_plugins(), "vaegan", {**SMALL, **TINY, "variant.critic_width": 4})
    variant, nets = run.variant, run.nets
    ctx = StepContext(step=0, device=torch.device("cpu"), rng=torch.Generator().manual_seed(0))
    batch = Batch(x=torch.rand(8, 1, 16, 16) * 2 - 1)
    assert nets.names() == ["generator", "critic", "encoder"]
    assert [p.player for p in variant.phases(1)] == ["critic", "encoder", "generator"]
    out, moved = _grads(variant, nets, "critic", ctx, batch)
    assert set(out.terms) == {"adv"} and moved["critic"]
    out, moved = _grads(variant, nets, "encoder", ctx, batch)
    assert set(out.terms) == {"kl", "llike"} and moved["encoder"]  # L_prior + L_llike^Dis_l
    out, moved = _grads(variant, nets, "generator", ctx, batch)
    assert set(out.terms) == {"adv", "llike"} and moved["generator"]  # gamma L_llike - L_GAN


def test_sample_from_the_prior_and_translate_reconstructs(tmp_path):
    host = load_plugins()
    for name, extra in (("vae", {}), ("vaegan", {"variant.critic_width": 4})):
        out = tmp_path / name
        train(host, make_config(host, name, {**SMALL, **TINY, **extra}), out)
        model, _ = load_model(host, out)
        x = Digits(Digits.Config(image_size=16, split="test")).load().x[:6]
        rec = translate_images(model, x, "a2b")
        assert rec.shape == x.shape and torch.equal(rec, translate_images(model, x, "a2b"))  # the posterior mean
        np.save(tmp_path / f"{name}.npy", x.numpy())
        result = CliRunner().invoke(cli, ["translate", str(out), "--input", str(tmp_path / f"{name}.npy"), "--out",
                                          str(tmp_path / f"{name}_rec.npy")])
        assert result.exit_code == 0, result.output
        assert np.allclose(np.load(tmp_path / f"{name}_rec.npy"), rec.numpy(), atol=1e-6)
        bad = CliRunner().invoke(cli, ["translate", str(out), "--input", str(tmp_path / f"{name}.npy"), "--out",
                                       str(tmp_path / "x.npy"), "--direction", "b2a"])
        assert bad.exit_code == 2 and "reconstructs its input (a2b)" in bad.output
        sampled = CliRunner().invoke(cli, ["sample", str(out), "--n", "4", "--out", str(tmp_path / f"{name}.png")])
        assert sampled.exit_code == 0, sampled.output
        grids = sorted((out / "samples").glob("step_*.png"))
        assert grids


def test_misuse_is_one_line(tmp_path):
    host = load_plugins()
    for name in ("vae", "vaegan"):
        with pytest.raises(ConfigError, match="needs one domain of images"):
            train(host, make_config(host, name, {**VECTOR, **TINY, "data.name": "gaussian-ring"}), tmp_path / name)
    with pytest.raises(ConfigError, match="variant.recon_sigma"):
        resolve(host, build_raw("vae"), ["variant.recon_sigma=0"])


def test_both_train_on_a_users_image_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    host = load_plugins()
    for name, extra in (("vae", {}), ("vaegan", {"variant.critic_width": 4})):
        cfg = make_config(host, name, {**SMALL, **TINY, **extra, "data.name": "image-folder", "data.path": str(folder)})
        trainer = train(host, cfg, tmp_path / name)
        assert trainer.spec.shape == (3, 16, 16)
        model, _ = load_model(host, tmp_path / name)
        rec = translate_images(model, torch.zeros(2, 3, 16, 16), "a2b")
        assert rec.shape == (2, 3, 16, 16) and torch.isfinite(rec).all()
