"""DCGAN: the shared contract suite, the architecture the paper prescribes, a short real run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gancore.app import load_plugins
from gancore.data.digits import Digits
from gancore.inference import generate
from gancore.testing import SMALL, VariantContract, make_config, train


class TestDCGANContract(VariantContract):
    variant = "dcgan"
    overrides = {"variant.generator_width": 4, "variant.critic_width": 4}


def test_architecture_follows_the_paper():
    host = load_plugins()
    cfg = make_config(host, "dcgan", {})
    from gancore.data import TensorData

    variant = cfg.variant_cls(cfg.variant, TensorData(torch.zeros(1, 1, 32, 32)).spec, cfg.loss_cls())
    nets = variant.build()
    g_layers = [type(m) for m in nets.generator.modules()]
    d_layers = list(nets.critic.modules())
    assert nn.ConvTranspose2d in g_layers and nn.BatchNorm2d in g_layers and nn.Tanh in g_layers
    assert not any(isinstance(m, nn.MaxPool2d | nn.AvgPool2d) for m in d_layers)
    convs = [m for m in d_layers if isinstance(m, nn.Conv2d)]
    assert all(c.stride == (2, 2) for c in convs[:-1])
    # no BatchNorm straight after the first conv; LeakyReLU(0.2) everywhere
    first = list(nets.critic.features)[:2]
    assert isinstance(first[0], nn.Conv2d) and isinstance(first[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    z = nets.generator.sample_latent(3)
    assert z.shape == (3, 100)  # latent_dim null means 100 for images
    x = nets.generator(z)
    assert x.shape == (3, 1, 32, 32) and x.abs().max() <= 1
    assert nets.critic(x).shape == (3,)
    assert cfg.optim.generator.lr == 2e-4 and cfg.optim.generator.betas == (0.5, 0.999)
    assert cfg.loss_cls.name == "nonsaturating"


def test_image_size_must_be_a_power_of_two(tmp_path):
    host = load_plugins()
    cfg = make_config(host, "dcgan", {**SMALL, "data.image_size": 24})
    from gancore.errors import ConfigError

    with pytest.raises(ConfigError, match="data.image_size: DCGAN stacks need a power of two"):
        train(host, cfg, tmp_path / "run")


@pytest.mark.slow
def test_a_short_real_run_learns_the_digits(tmp_path):
    """300 steps at 16x16: samples are diverse and their mean image matches the digits'."""
    host = load_plugins()
    cfg = make_config(host, "dcgan", {**SMALL, "train.steps": 300, "train.batch_size": 32,
                                       "variant.generator_width": 16, "variant.critic_width": 16})
    train(host, cfg, tmp_path / "run")
    fake, _ = generate(host, tmp_path / "run", n=256, seed=0)
    real = Digits(Digits.Config(image_size=16)).load().x
    corr = torch.corrcoef(torch.stack([fake.mean(0).flatten(), real.mean(0).flatten()]))[0, 1]
    assert corr > 0.85, f"mean images differ (correlation {corr:.2f})"
    assert fake.std(0).mean() > 0.2, "samples have collapsed to one image"
    untrained = make_config(host, "dcgan", {**SMALL, "variant.generator_width": 16,
                                             "variant.critic_width": 16})
    nets = untrained.variant_cls(untrained.variant, cfg.data_cls(cfg.data).load().spec,
                                 untrained.loss_cls()).build()
    with torch.no_grad():
        before = nets.generator.eval()(nets.generator.sample_latent(256))
    corr0 = torch.corrcoef(torch.stack([before.mean(0).flatten(), real.mean(0).flatten()]))[0, 1]
    assert corr > corr0 + 0.2
