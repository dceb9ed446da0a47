"""An example gancore plugin: a custom loss and a small variant.

Install it with ``pip install -e docs/example_plugin``; then ``gancore list`` shows the loss
``relativistic`` and the variant ``mlp-gan``, and ``gancore run mlp-gan`` trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore import (
    Batch,
    Loss,
    Networks,
    PenaltyInput,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    hookimpl,
    lazy_module,
)

if TYPE_CHECKING:  # names used only in annotations
    from torch import Tensor

# Imported at their first use, not when gancore loads the plugin: `gancore --help` stays fast.
torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")
example_nets = lazy_module("gancore_example.nets")  # the nn.Module subclasses


class RelativisticLoss(Loss):
    """Relativistic average GAN loss (Jolicoeur-Martineau 2018)."""

    name = "relativistic"
    generator_uses_real = True  # variants pass real_out to generator_loss

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        return F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        if real_out is None:
            raise ValueError("the relativistic loss needs the critic's output on real samples")
        real, fake = real_out.float().detach(), fake_out.float()
        return F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()


class MLPGANSettings(Settings):
    latent_dim: int = Field(32, ge=1, description="Length of the noise vector.")
    hidden: int = Field(256, ge=8, description="Width of the hidden layers.")


class MLPGAN(Variant):
    """A two-hidden-layer MLP GAN, trained with the relativistic loss by default."""

    name = "mlp-gan"
    Config = MLPGANSettings

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return {"loss": {"name": "relativistic"}, "data": {"image_size": 16},
                "train": {"steps": 1000, "batch_size": 64}}

    def build(self) -> Networks:
        shape = self.data.shape
        return Networks(generator=example_nets.MLPGenerator(self.config.latent_dim, shape, self.config.hidden),
                        critic=example_nets.MLPCritic(shape, self.config.hidden))

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        with torch.no_grad():
            fake = g(ctx.latent(g, batch.x.shape[0]))
        real_out, fake_out = d(batch.x), d(fake)
        return StepOutput(terms={"adv": self.loss.critic_loss(real_out, fake_out)},
                          penalties=[PenaltyInput(critic=d, real=batch.x, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        fake = g(ctx.latent(g, batch.x.shape[0]))
        return StepOutput(terms={"adv": self.loss.generator_loss(d(fake), d(batch.x))})


@hookimpl
def gancore_register_losses() -> list[type]:
    return [RelativisticLoss]


@hookimpl
def gancore_register_variants() -> list[type]:
    return [MLPGAN]
