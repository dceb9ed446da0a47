"""DCGAN (Radford et al. 2015) as a gancore plugin.

Strided transposed convolutions with BatchNorm + ReLU and a tanh output in the generator;
strided convolutions with LeakyReLU(0.2) and BatchNorm (not on the first layer) in the critic,
one logit per sample; non-saturating loss (BCE with logits) by default, Adam 2e-4 (0.5, 0.999).
Real and generated batches go through the critic's BatchNorm separately.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from gancore import (
    Batch,
    PenaltyInput,
    Players,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    hookimpl,
)
from gancore.nets import DCGANCritic, DCGANGenerator


class DCGANSettings(Settings):
    latent_dim: int = Field(100, ge=1, le=4096, description="Length of the noise vector z.")
    generator_width: int = Field(
        32, ge=4, le=1024, description="Channels of the generator's last hidden layer (ngf)."
    )
    critic_width: int = Field(
        32, ge=4, le=1024, description="Channels of the critic's first layer (ndf)."
    )


class DCGAN(Variant):
    """Deep convolutional GAN."""

    name = "dcgan"
    Config = DCGANSettings

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return {
            "loss": {"name": "nonsaturating"},
            "train": {"steps": 1500, "batch_size": 64, "n_critic": 1},
            "optim": {
                "generator": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
                "critic": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
            },
        }

    def build(self) -> Players:
        c = self.config
        channels, size = self.data.shape[0], self.data.shape[-1]
        return Players(
            generator=DCGANGenerator(c.latent_dim, channels, size, c.generator_width),
            critic=DCGANCritic(channels, size, c.critic_width, norm="batch"),
        )

    def critic_step(self, nets: Players, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        z = g.sample_latent(batch.x.shape[0], generator=ctx.rng, device=ctx.device)
        with torch.no_grad():
            fake = g(z)
        real_out = d(batch.x)  # real and fake through BatchNorm separately
        fake_out = d(fake)
        return StepOutput(
            terms={"adv": self.loss.critic_loss(real_out, fake_out)},
            stats={"real": real_out.detach().float().mean(), "fake": fake_out.detach().float().mean()},
            penalties=[PenaltyInput(critic=d, real=batch.x, fake=fake)],
        )

    def generator_step(self, nets: Players, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        z = g.sample_latent(batch.x.shape[0], generator=ctx.rng, device=ctx.device)
        real_out = d(batch.x) if self.loss.generator_uses_real else None
        return StepOutput(terms={"adv": self.loss.generator_loss(d(g(z)), real_out)})


@hookimpl
def gancore_register_variants() -> list[type]:
    return [DCGAN]
