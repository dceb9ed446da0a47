"""Kernel details: parameters a variant freezes stay frozen and untouched."""

from __future__ import annotations

import torch

from gancore import Networks, hookimpl
from gancore.app import load_plugins
from gancore.testing import SMALL, make_config, train


def test_parameters_frozen_by_the_variant_stay_frozen(tmp_path):
    from gancore_dcgan import DCGAN

    class FrozenFirstLayer(DCGAN):
        """DCGAN with the critic's first convolution frozen."""

        name = "dcgan-frozen"

        def build(self) -> Networks:
            nets = super().build()
            nets.critic.features[0].weight.requires_grad_(False)
            return nets

    class Plugin:
        @hookimpl
        def gancore_register_variants(self):
            return [FrozenFirstLayer]

    host = load_plugins(extra=[("frozen", Plugin())])
    cfg = make_config(host, "dcgan-frozen", {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4})
    torch.manual_seed(cfg.train.seed)
    trainer = train(host, cfg, tmp_path / "run")
    weight = trainer.built.nets.critic.features[0].weight
    assert not weight.requires_grad
    torch.manual_seed(cfg.train.seed)
    fresh = cfg.variant_cls(cfg.variant, trainer.spec, cfg.loss_cls()).build()
    assert torch.equal(weight, fresh.critic.features[0].weight)  # never updated
    assert trainer.built.nets.critic.features[0].bias.requires_grad


def test_fast_path_settings_resolve_per_device_and_train(tmp_path):
    from gancore.app import load_plugins
    from gancore.kernel.build import use_channels_last
    from gancore.testing import SMALL, make_config, train

    host = load_plugins()
    cfg = make_config(host, "dcgan", {**SMALL, "train.channels_last": "on", "train.fused_optimizer": "on"})
    trainer = train(host, cfg, tmp_path / "on")
    conv = next(m for m in trainer.built.nets.critic.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert trainer.state.optimizers["critic"].defaults["fused"] is True
    assert trainer.sampler.next().x.is_contiguous(memory_format=torch.channels_last)
    auto = make_config(host, "dcgan", SMALL)
    assert use_channels_last(auto, trainer.spec, torch.device("cuda"))
    assert use_channels_last(auto, trainer.spec, torch.device("cpu"), trainer.built.nets)  # DCGAN stacks gain
    cyclegan = train(host, make_config(host, "cyclegan", {**SMALL, "variant.generator_width": 4,
                                                          "variant.critic_width": 4, "train.batch_size": 2}),
                     tmp_path / "cy")
    assert not cyclegan.built.channels_last  # instance norm and reflection padding lose on the CPU
    assert train(host, auto, tmp_path / "auto").built.channels_last


def test_compile_keeps_the_penalised_critic_eager_and_trains(tmp_path):
    from gancore.app import load_plugins
    from gancore.testing import SMALL, make_config, train

    host = load_plugins()
    over = {**{k: v for k, v in SMALL.items() if k != "data.image_size"}, "data.name": "gaussian-ring",
            "variant.mode": "gp", "variant.mlp_hidden": 16, "train.steps": 3}
    eager = train(host, make_config(host, "wgan", over), tmp_path / "eager")
    fast = train(host, make_config(host, "wgan", {**over, "train.compile": True}), tmp_path / "compiled")
    phase = fast.runner.views
    assert type(phase["generator"].generator).__name__ == "OptimizedModule"
    assert phase["critic"].critic is fast.built.nets.critic  # the penalty's double backward stays eager
    for (k, a), b in zip(eager.built.nets.generator.state_dict().items(),
                         fast.built.nets.generator.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-4), k
