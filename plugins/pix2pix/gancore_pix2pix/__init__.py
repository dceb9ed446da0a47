"""pix2pix (Isola et al. 2017) as a gancore plugin: paired image-to-image translation.

A U-Net generator G (skip connections; dropout in the three innermost decoder stages, kept at
test time: the paper's only noise), a PatchGAN critic D that sees the input and the output
together (``D(cat(a, b))``, "we feed G's input and output together to D"), the non-saturating loss
plus lambda * L1(G(a), b) with lambda = 100, Adam 2e-4 (0.5, 0.999) with the rate decaying linearly
to 0 over the second half, instance normalisation (the paper's batch 1 makes its BatchNorm an
instance norm). D's objective is halved, as in the paper.

The default data are the built-in ``digits-restore`` pairs (a blurred digit -> the sharp digit): no
per-pixel map can undo the blur and the sharp strokes are under-determined by the blurred ones, so an
L1-only model averages them into a blur, which the critic refuses. ``data.name=paired`` (or a pack
of it) trains on the user's aligned pairs; ``--preset facades`` is the paper's facades schedule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from gancore import (
    Batch,
    Capabilities,
    ConfigError,
    Networks,
    PenaltyInput,
    Phase,
    Preset,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    gpu_preset,
    hookimpl,
    lazy_module,
    patchgan_min_image_size,
)

if TYPE_CHECKING:
    from torch import Tensor, nn

torch = lazy_module("torch")


class Pix2PixSettings(Settings):
    l1_weight: float = Field(100.0, ge=0.0, description="lambda: weight of L1(G(a), b) beside the adversarial "
                             "term (100 in the paper; 0 trains the adversarial term alone).")
    adversarial: bool = Field(True, description="false: L1 alone, no critic update (the paper's L1-only "
                              "baseline, which the benchmark compares with).")
    generator_width: int = Field(32, ge=4, le=512, description="Channels of the U-Net's first layer (ngf; 64 in "
                                 "the paper).")
    unet_depth: int | None = Field(None, ge=1, le=10, description="Stride-2 stages of the U-Net; null: down to a "
                                   "1x1 bottleneck (log2 of the image side: 8 at 256, as the paper).")
    dropout: float = Field(0.5, ge=0.0, lt=1.0, description="Dropout in the three innermost decoder stages, in "
                           "training and at test time (0.5 in the paper).")
    critic_width: int = Field(32, ge=4, le=512, description="Channels of the PatchGAN's first layer (ndf; 64 in "
                              "the paper).")
    critic_layers: int = Field(2, ge=1, le=5, description="Strided layers of the PatchGAN: 3 is the 70x70 "
                               "critic of the paper; 2 (34x34) suits 32x32 images.")
    norm: Literal["instance", "batch", "none"] = Field("instance", description="Normalisation in G and D "
                                                       "(instance: the paper's BatchNorm at batch 1).")


#: The paper's networks, shared by the presets.
PAPER = {"variant.generator_width": 64, "variant.critic_width": 64, "variant.critic_layers": 3}


class Pix2Pix(Variant):
    """A U-Net translating a -> b, a conditional PatchGAN critic on (a, b), adversarial + L1."""

    name = "pix2pix"
    Config = Pix2PixSettings
    presets = {
        "facades": Preset("The paper's facades schedule: 256x256, the 70x70 PatchGAN, batch 1, 200 epochs of the "
                          "400 training pairs (80,000 steps), the rate decaying over the second half; train on a "
                          "pack of facades made with crop=random (the paper's 286 -> 256 jitter): --set "
                          "data.name=pack --set data.path=facades.pack",
                          {**PAPER, "data.image_size": 256, "train.batch_size": 1, "train.steps": 80000,
                           "log.sample_every": 4000, "log.checkpoint_every": 8000}),
        "gpu": gpu_preset("256x256 pairs on one GPU: the paper's networks, batch 16, 40,000 steps; set data.name "
                          "(paired or pack) and data.path", image_size=256, width=None, batch_size=16, steps=40000,
                          settings=PAPER),
    }

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        c: Any = config
        return Capabilities(min_image_size=patchgan_min_image_size(c.critic_layers))

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear", "decay_start": 0.5}
        return {
            "data": {"name": "digits-restore"},
            "loss": {"name": "nonsaturating"},
            "train": {"steps": 2000, "batch_size": 16, "n_critic": 1},
            "optim": {"generator": dict(adam), "critic": dict(adam)},
            "log": {"samples": 8},
        }

    def _depth(self) -> int:
        side = self.data.shape[-1]
        if self.config.unet_depth is not None:
            return self.config.unet_depth
        depth = int(math.log2(side)) if side > 0 else 0
        if 2**depth != side:
            raise ConfigError(f"data.image_size: pix2pix's default U-Net goes down to 1x1 and needs a power of two, "
                              f"got {side} (or set variant.unet_depth)")
        return depth

    def build(self) -> Networks:
        if self.data.kind != "image" or self.data.domains != 2 or not self.data.paired:
            raise ConfigError("data.name: pix2pix needs aligned image pairs (digits-restore, paired, or a pack of "
                              "them); for unpaired domains use cyclegan")
        c, ch = self.config, self.data.shape[0]
        from gancore.nets import PatchCritic, UNetGenerator

        generator = UNetGenerator(ch, ch, c.generator_width, self._depth(), norm=c.norm,
                                  image_size=self.data.shape[-1], dropout=c.dropout)
        if not c.adversarial:
            if c.l1_weight == 0:
                raise ConfigError("variant.l1_weight: 0 with variant.adversarial = false leaves nothing to train")
            return Networks(generator=generator)
        return Networks(generator=generator, critic=PatchCritic(2 * ch, c.critic_width, c.critic_layers, norm=c.norm))

    def phases(self, n_critic: int) -> list[Phase]:
        if self.config.adversarial:
            return super().phases(n_critic)
        return [Phase("generator", self.generator_step)]  # the L1-only baseline: no critic

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        a, b = batch.x, batch.x_b
        with torch.no_grad():
            fake = nets.generator(a)
        real_pair, fake_pair = torch.cat([a, b], 1), torch.cat([a, fake], 1)
        loss = self.loss.critic_loss(nets.critic(real_pair), nets.critic(fake_pair))
        return StepOutput(terms={"adv": 0.5 * loss},
                          penalties=[PenaltyInput(critic=nets.critic, real=real_pair, fake=fake_pair)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        a, b = batch.x, batch.x_b
        fake = nets.generator(a)
        terms = {}
        if self.config.adversarial:
            real_out = nets.critic(torch.cat([a, b], 1)) if self.loss.generator_uses_real else None
            terms["adv"] = self.loss.generator_loss(nets.critic(torch.cat([a, fake], 1)), real_out)
        if self.config.l1_weight > 0:
            terms["l1"] = self.config.l1_weight * (fake - b).abs().mean()
        return StepOutput(terms=terms)

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        if direction == "b2a":
            raise ConfigError("--direction: a pix2pix run translates one way, a2b (the direction of its pairs); "
                              "train another run with data.direction=b2a for the other")
        if direction != "a2b":
            raise ConfigError(f"--direction: expected a2b, got {direction!r}")
        return generator(x)

    def preview(self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, int | None]:
        """Rows: the inputs A, their translations G(A), the targets B."""
        a, b = batch.x[:n], batch.x_b[:n]
        return torch.cat([a, generator(a), b]), len(a)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [Pix2Pix]
