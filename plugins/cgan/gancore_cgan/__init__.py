"""Conditional GAN (Mirza & Osindero 2014) as a gancore plugin.

The generator takes the class label with the noise (one-hot or a learned embedding
concatenated to z); the critic takes it as extra one-hot input channels (``concat``, the seed
articles' design) or through a projection (``projection``, Miyato & Koyama 2018). An ACGAN-style
auxiliary classifier head (Odena et al. 2017) is an option: the critic then also learns to
classify real samples, and the generator to make samples classified as their label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from gancore import (
    Batch,
    ConfigError,
    Networks,
    NetworkWidths,
    PenaltyInput,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    gpu_preset,
    hookimpl,
    lazy_module,
)
from gancore.games import dcgan_defaults

if TYPE_CHECKING:
    from gancore_cgan.nets import ClassifiedScores

torch = lazy_module("torch")
cgan_nets = lazy_module("gancore_cgan.nets")  # nn.Module subclasses: torch loads when a network is built
F = lazy_module("torch.nn.functional")


class CGANSettings(NetworkWidths):
    conditioning: Literal["concat", "projection"] = Field(
        "projection", description="How the critic sees the label: one-hot input channels, or a projection."
    )
    label_code: Literal["onehot", "learned"] = Field(
        "onehot", description="How the generator sees the label: one-hot, or a learned embedding."
    )
    embed_dim: int = Field(32, ge=1, le=1024, description="Size of the learned label embedding.")
    auxiliary: bool = Field(False, description="Add an ACGAN auxiliary classifier head to the critic.")
    aux_weight: float = Field(1.0, ge=0.0, description="Weight of the auxiliary classification losses.")
    latent_dim: int | None = Field(
        None, ge=1, le=4096, description="Length of the noise vector z; null: 100 for images, 2 for vectors."
    )
    mlp_hidden: int = Field(256, ge=4, le=65536, description="Hidden units of the MLPs used for vector data.")
    mlp_layers: int = Field(3, ge=1, le=16, description="Hidden layers of the MLPs for vector data.")


class CGAN(Variant):
    """Class-conditional GAN: concat or projection critic, optional auxiliary classifier."""

    name = "cgan"
    Config = CGANSettings
    presets = {
        "gpu": gpu_preset(),
    }
    conditional = True

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return dcgan_defaults(steps=2000)

    def build(self) -> Networks:
        c, shape, classes = self.config, self.data.shape, self.data.num_classes
        vector = self.data.kind == "vector"
        if vector and c.conditioning == "projection":
            raise ConfigError("variant.conditioning: projection needs image data; use concat for vectors")
        latent = c.latent_dim or (2 if vector else 100)
        generator = cgan_nets.ConditionalGenerator.build(shape, classes, latent, c.generator_width, c.label_code,
                                               c.embed_dim, c.mlp_hidden, c.mlp_layers)
        if c.conditioning == "concat":
            critic = cgan_nets.ConcatCritic(shape, classes, c.critic_width, c.auxiliary, c.mlp_hidden, c.mlp_layers)
        else:
            critic = cgan_nets.ProjectionCritic(shape, classes, c.critic_width, c.auxiliary)
        return Networks(generator=generator, critic=critic)

    def _aux(self, out: ClassifiedScores, y: torch.Tensor) -> torch.Tensor:
        assert out.class_logits is not None
        return F.cross_entropy(out.class_logits.float(), y)

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d, y = nets.generator, nets.critic, batch.y
        assert y is not None
        z = ctx.latent(g, len(y))
        with torch.no_grad():
            fake = g(z, y)  # generated with the real batch's labels
        real, generated = d(batch.x, y), d(fake, y)
        terms: dict[str, torch.Tensor] = {}
        stats: dict[str, torch.Tensor] = {}
        if self.config.auxiliary:
            terms["aux_real"] = self.config.aux_weight * self._aux(real, y)
            stats["aux_accuracy"] = (real.class_logits.argmax(1) == y).float().mean().detach()
        terms["adv"] = self.loss.critic_loss(real.scores, generated.scores)
        if self.config.auxiliary:
            terms["aux_fake"] = self.config.aux_weight * self._aux(generated, y)
        stats.update(real=real.scores.detach().float().mean(), fake=generated.scores.detach().float().mean())
        return StepOutput(terms=terms, stats=stats,
                          penalties=[PenaltyInput(critic=lambda x: d(x, y).scores, real=batch.x, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d, y = nets.generator, nets.critic, batch.y
        assert y is not None
        z = ctx.latent(g, len(y))
        real = d(batch.x, y).scores if self.loss.generator_uses_real else None
        generated = d(g(z, y), y)
        terms = {"adv": self.loss.generator_loss(generated.scores, real)}
        if self.config.auxiliary:
            terms["aux"] = self.config.aux_weight * self._aux(generated, y)
        return StepOutput(terms=terms)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [CGAN]
