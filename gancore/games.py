"""Reusable games for variant plugins (public API).

:class:`NoiseGame` is the standard unconditional game: the generator maps noise to samples, the
critic scores real and generated batches separately (so BatchNorm never mixes them), and the
configured loss says what each player minimises. DCGAN and WGAN are this game with different
networks and defaults. With ``variant.reuse_fake`` (:class:`NoiseGameSettings`) the generator's
phase scores the batch the critic's phase generated, through the graph that phase kept
(:attr:`~gancore.variant.Phase.keep_graph`): one generator forward per iteration, as
pytorch/examples' DCGAN loop does, instead of a fresh draw for each phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore.interfaces import Batch, DataSpec, Networks, NetworkWidths, PenaltyInput, StepContext, StepOutput
from gancore.lazy import lazy_module
from gancore.variant import CRITIC, Phase, Variant

if TYPE_CHECKING:
    from gancore.nets.dcgan import Norm

torch = lazy_module("torch")

__all__ = ["NoiseGame", "NoiseGameSettings", "dcgan_defaults", "standard_networks"]


class NoiseGameSettings(NetworkWidths):
    """Settings every :class:`NoiseGame` reads, beside the two widths: subclass it."""

    reuse_fake: bool = Field(False, description="The generator's phase scores the batch the last critic step "
                             "generated (its graph kept) instead of drawing a new one: one generator forward per "
                             "iteration, as pytorch/examples' DCGAN does (faster; one process only).")


def dcgan_defaults(steps: int) -> dict[str, Any]:
    """The DCGAN paper's training settings: non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 64."""
    adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
    return {
        "loss": {"name": "nonsaturating"},
        "train": {"steps": steps, "batch_size": 64, "n_critic": 1},
        "optim": {"generator": dict(adam), "critic": dict(adam)},
    }


def standard_networks(
    spec: DataSpec,
    *,
    latent_dim: int | None,
    generator_width: int,
    critic_width: int,
    critic_norm: Norm,
    mlp_hidden: int,
    mlp_layers: int,
) -> Networks:
    """DCGAN stacks for image data, MLPs for vector data.

    ``latent_dim`` None means 100 for images (DCGAN's) and 2 for vectors: on the 2-D mixtures a
    2-d noise reaches all modes with sharper samples (WGAN-GP's toy setting).
    """
    from gancore.nets import DCGANCritic, DCGANGenerator, MLPCritic, MLPGenerator

    if spec.kind == "vector":
        dim = spec.shape[0]
        return Networks(generator=MLPGenerator(latent_dim or 2, dim, mlp_hidden, mlp_layers),
                       critic=MLPCritic(dim, mlp_hidden, mlp_layers))
    channels, size = spec.shape[0], spec.shape[-1]
    return Networks(generator=DCGANGenerator(latent_dim or 100, channels, size, generator_width),
                   critic=DCGANCritic(channels, size, critic_width, norm=critic_norm))


class NoiseGame(Variant):
    """Noise -> generator -> critic, with the configured loss. Subclasses implement ``build``."""

    @property
    def reuse_fake(self) -> bool:
        return bool(getattr(self.config, "reuse_fake", False))

    def phases(self, n_critic: int) -> list[Phase]:
        if not self.reuse_fake:
            return super().phases(n_critic)
        return [Phase(CRITIC, self.critic_step, repeat=n_critic, keep_graph=("generator",)),
                Phase("generator", self.generator_step)]

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        z = ctx.latent(g, batch.x.shape[0])
        if self.reuse_fake:  # the graph through g serves the generator's phase; the critic sees none of it
            ctx.carry["fake"] = g(z)
            fake = ctx.carry["fake"].detach()
        else:
            with torch.no_grad():
                fake = g(z)
        real_out = d(batch.x)  # real and fake batches through the critic separately
        fake_out = d(fake)
        return StepOutput(
            terms={"adv": self.loss.critic_loss(real_out, fake_out)},
            stats={"real": real_out.detach().float().mean(), "fake": fake_out.detach().float().mean()},
            penalties=[PenaltyInput(critic=d, real=batch.x, fake=fake)],
        )

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        fake = ctx.carry.pop("fake", None)
        if fake is None:
            fake = g(ctx.latent(g, batch.x.shape[0]))
        real_out = d(batch.x) if self.loss.generator_uses_real else None
        return StepOutput(terms={"adv": self.loss.generator_loss(d(fake), real_out)})
