"""DCGAN (Radford et al. 2015) as a gancore plugin.

Strided transposed convolutions with BatchNorm + ReLU and a tanh output in the generator;
strided convolutions with LeakyReLU(0.2) and BatchNorm (not on the first layer) in the critic,
one logit per sample; non-saturating loss (BCE with logits) by default, Adam 2e-4 (0.5, 0.999).
Real and generated batches go through the critic's BatchNorm separately. Vector data (the 2-D
mixtures) get MLPs instead.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gancore import Networks, Settings, gpu_preset, hookimpl
from gancore.games import NoiseGame, NoiseGameSettings, dcgan_defaults, standard_networks


class DCGANSettings(NoiseGameSettings):
    latent_dim: int | None = Field(
        None, ge=1, le=4096, description="Length of the noise vector z; null: 100 for images, 2 for vector data."
    )
    mlp_hidden: int = Field(256, ge=4, le=65536, description="Hidden units of the MLPs used for vector data.")
    mlp_layers: int = Field(3, ge=1, le=16, description="Hidden layers of the MLPs for vector data.")


class DCGAN(NoiseGame):
    """Deep convolutional GAN."""

    name = "dcgan"
    Config = DCGANSettings
    presets = {
        "gpu": gpu_preset("64x64 on one GPU: the DCGAN paper's 64-pixel networks (ngf = ndf = 64), batch 128, "
                          "20,000 steps"),
    }

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return dcgan_defaults(steps=1500)

    def build(self) -> Networks:
        c = self.config
        return standard_networks(self.data, latent_dim=c.latent_dim, generator_width=c.generator_width,
                                critic_width=c.critic_width, critic_norm="batch",
                                mlp_hidden=c.mlp_hidden, mlp_layers=c.mlp_layers)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [DCGAN]
