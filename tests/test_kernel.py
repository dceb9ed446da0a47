"""Kernel details: parameters a variant freezes stay frozen and untouched."""

from __future__ import annotations

import torch

from gancore import Players, hookimpl
from gancore.plugins import load_plugins
from gancore.testing import SMALL, make_config, train


def test_parameters_frozen_by_the_variant_stay_frozen(tmp_path):
    from gancore_dcgan import DCGAN

    class FrozenFirstLayer(DCGAN):
        """DCGAN with the critic's first convolution frozen."""

        name = "dcgan-frozen"

        def build(self) -> Players:
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
    weight = trainer.model.nets.critic.features[0].weight
    assert not weight.requires_grad
    torch.manual_seed(cfg.train.seed)
    fresh = cfg.variant_cls(cfg.variant, trainer.spec, cfg.loss_cls()).build()
    assert torch.equal(weight, fresh.critic.features[0].weight)  # never updated
    assert trainer.model.nets.critic.features[0].bias.requires_grad
