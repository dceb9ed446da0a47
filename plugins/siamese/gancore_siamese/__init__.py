"""The Siamese GAN of seed 000 as a gancore plugin, with TraVeLGAN-style translation.

The critic is a Siamese encoder S: it maps an image to a vector of length ``vec_len``. With the
``siamese-anchor`` loss the critic pulls real encodings to a fixed anchor (the origin) and pushes
generated ones at least a margin away; the generator pulls its encodings to the anchor.

``variant.mode = "generate"``: noise -> DCGAN-like generator -> S. ``variant.mode = "translate"``
(Amodio & Krishnaswamy 2019, TraVeLGAN, with seed 000's single network): one U-Net generator
G: A -> B, and the same S gives both the realism term (distance to the anchor) and the space in
which translation must keep the *transformation vectors* between pairs of a batch,
S(a_i) - S(a_j) ~ S(G(a_i)) - S(G(a_j)) (cosine plus distance), with no cycle loss and no
second generator. Seed 000's stabilisers are options: spectral normalisation of S (on by
default, through the core's ``spectral-norm`` regularizer), self-attention in G and S, and
TTUR (the critic learns faster than the generator).

In translate mode ``variant.orient=auto`` (the default) first looks for a global turn or mirror
between the domains in the data (the core's ``find_orientation``) and puts it in front of G:
the TraVeL and adversarial terms do not find one by themselves (20% label preservation on
digits <-> quarter-turned digits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from gancore import (
    Batch,
    Capabilities,
    ConfigError,
    InitReport,
    Networks,
    NetworkWidths,
    PenaltyInput,
    Preset,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    gpu_preset,
    hookimpl,
    lazy_module,
)
from gancore.losses import squared_distance
from gancore.translation import OrientMode, orient_generators, orientation_setting

if TYPE_CHECKING:
    from torch import Tensor, nn

    from gancore import TensorData

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


def transformation_vectors(s: Tensor) -> Tensor:
    """``S(x_i) - S(x_j)`` for every pair ``i < j`` of a batch of encodings ``[N, D]``: ``[N(N-1)/2, D]``."""
    i, j = torch.triu_indices(len(s), len(s), offset=1, device=s.device)
    return s[i] - s[j]


def travel_loss(s_source: Tensor, s_translated: Tensor, distance_weight: float) -> Tensor:
    """TraVeLGAN's transformation-vector loss over all pairs of the batch, in float32.

    Mean over pairs of (1 - cos(v_ij, v'_ij)) + ``distance_weight`` * |v_ij - v'_ij|, where
    v_ij = S(a_i) - S(a_j) and v'_ij = S(G(a_i)) - S(G(a_j)). Zero when translation moves
    every encoding by the same vector.
    """
    v, v_t = transformation_vectors(s_source.float()), transformation_vectors(s_translated.float())
    cosine = 1.0 - F.cosine_similarity(v, v_t, dim=1, eps=1e-8)
    distance = (v - v_t).norm(dim=1)
    return cosine.mean() + distance_weight * distance.mean()


def margin_loss(s: Tensor, margin: float) -> Tensor:
    """TraVeLGAN's Siamese margin term: mean over pairs of max(0, margin - |S(x_i) - S(x_j)|),
    which keeps S from mapping distinct images to the same point (it would make every
    transformation vector zero)."""
    return F.relu(margin - transformation_vectors(s.float()).norm(dim=1)).mean()


class SiameseSettings(NetworkWidths):
    mode: Literal["generate", "translate"] = Field(
        "generate", description="generate: images from noise; translate: one generator A -> B (TraVeLGAN)."
    )
    vec_len: int = Field(64, ge=1, le=4096, description="Length of the critic's output vector (VecLen).")
    latent_dim: int = Field(100, ge=1, le=4096, description="generate: length of the noise vector z.")
    self_attention: bool = Field(
        False, description="SAGAN self-attention in the generator and the critic (seed 000's option)."
    )
    unet_depth: int = Field(
        3, ge=1, le=7, description="translate: stride-2 stages of the U-Net generator (the image side must "
        "be a multiple of 2**depth; at 2**depth the bottleneck is 1x1 and sees the whole image)."
    )
    travel_weight: float = Field(
        1.0, ge=0.0, description="translate: weight of the transformation-vector (TraVeL) term for both players."
    )
    travel_distance_weight: float = Field(
        1.0, ge=0.0, description="translate: weight of the distance |v - v'| inside the TraVeL term, next to "
        "the cosine."
    )
    siamese_margin: float = Field(
        1.0, ge=0.0, description="translate: the critic keeps encodings of distinct source images at least "
        "this far apart (TraVeLGAN's margin term; 0 disables it)."
    )
    margin_weight: float = Field(1.0, ge=0.0, description="translate: weight of the margin term.")
    orient: OrientMode = orientation_setting()


class Siamese(Variant):
    """Siamese GAN: the critic outputs vectors; generate from noise or translate A -> B."""

    name = "siamese"
    Config = SiameseSettings
    presets = {
        "gpu": gpu_preset("generate at 64x64 on one GPU: networks 64 wide with self-attention (seed 000's "
                          "choice), batch 64, 20,000 steps", batch_size=64, settings={"variant.self_attention": True}),
        "gpu-translate": Preset("translate at 128x128 on one GPU: a U-Net of depth 7 (1x1 bottleneck), "
                                "networks 64 wide, batch 16, 20,000 steps",
                                {"variant.mode": "translate", "data.image_size": 128, "variant.unet_depth": 7,
                                 "variant.generator_width": 64, "variant.critic_width": 64,
                                 "train.batch_size": 16, "train.steps": 20000, "log.sample_every": 1000,
                                 "log.checkpoint_every": 2000}),
    }

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        # generating from noise under bf16 autocast, FID on the digits rose from 78.2 (fp32, seeds 0-2 within
        # 76.9-79.1) to 90.3 (106.7 / 79.4 / 84.9), so auto stays fp32 there; translating held (FID 12.7
        # against 14.3 within the spread, preservation 96.3% against 96.1%): benchmarks/README.md,
        # "Quality at bf16 against fp32"
        return Capabilities(auto_bf16=config.mode == "translate")

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        # TTUR (Heusel et al. 2017; SAGAN's 4e-4 / 1e-4 with Adam (0, 0.9)).
        critic = {"name": "adam", "lr": 4e-4, "betas": [0.0, 0.9]}
        generator = {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.9]}
        common = {"loss": {"name": "siamese-anchor"}, "regularizers": [{"name": "spectral-norm"}],
                  "optim": {"generator": generator, "critic": critic}}
        if config.mode == "translate":
            return {**common, "data": {"name": "digits-pair"},
                    "train": {"steps": 1500, "batch_size": 16, "n_critic": 1}, "log": {"samples": 8}}
        return {**common, "data": {"name": "digits"}, "train": {"steps": 1500, "batch_size": 64, "n_critic": 1}}

    def build(self) -> Networks:
        c, spec = self.config, self.data
        if spec.kind != "image":
            raise ConfigError(f"data.name: siamese needs image data, got {spec.kind} data")
        from gancore.nets import DCGANCritic, DCGANGenerator, UNetGenerator
        from gancore.translation import Oriented

        channels, size = spec.shape[0], spec.shape[-1]
        critic = DCGANCritic(channels, size, c.critic_width, norm="none", out_dim=c.vec_len,
                             attention=c.self_attention)
        if c.mode == "translate":
            if spec.domains != 2:
                raise ConfigError("data.name: siamese's translate mode needs two unpaired image domains "
                                  "(unpaired or digits-pair)")
            generator = Oriented(UNetGenerator(channels, channels, c.generator_width, c.unet_depth,
                                               attention=c.self_attention, image_size=size))
            return Networks(generator=generator, critic=critic)
        if spec.domains != 1:
            raise ConfigError("data.name: siamese's generate mode needs one image domain; set "
                              "variant.mode=translate for two")
        return Networks(generator=DCGANGenerator(c.latent_dim, channels, size, c.generator_width,
                                                attention=c.self_attention),
                       critic=critic)

    def initialize(self, nets: Networks, data: TensorData) -> list[InitReport]:
        if self.config.mode != "translate" or self.config.orient == "off":
            return []
        return [orient_generators(data, nets.generator)]

    def anchor_distance(self, out: Tensor) -> Tensor:
        """Squared distance of each encoding to the loss's anchor (the origin for losses without
        one, such as ``contrastive``)."""
        return squared_distance(out, float(getattr(self.loss.config, "anchor", 0.0)))

    def score(self, critic: nn.Module) -> Any:
        """The critic as a realism score per sample, for penalties: |S(x) - anchor| (0 is most real)."""

        def distance(x: Tensor) -> Tensor:
            return (self.anchor_distance(critic(x)) + 1e-12).sqrt()

        return distance

    def _fakes(self, generator: nn.Module, batch: Batch, ctx: StepContext) -> tuple[Tensor, Tensor]:
        """(inputs, fakes): the source images (translate) or the noise (generate), and G of them."""
        if self.config.mode == "translate":
            return batch.x, generator(batch.x)
        z = ctx.latent(generator, batch.x.shape[0])
        return z, generator(z)

    def _real(self, batch: Batch) -> Tensor:
        return batch.x_b if self.config.mode == "translate" else batch.x

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d, c = nets.generator, nets.critic, self.config
        real = self._real(batch)
        with torch.no_grad():
            source, fake = self._fakes(g, batch, ctx)
        real_out, fake_out = d(real), d(fake)
        terms = {"adv": self.loss.critic_loss(real_out, fake_out)}
        stats = {"real_distance": self.anchor_distance(real_out.detach()).mean(),
                 "fake_distance": self.anchor_distance(fake_out.detach()).mean()}
        if c.mode == "translate":
            source_out = d(source)
            if c.travel_weight > 0:
                terms["travel"] = c.travel_weight * travel_loss(source_out, fake_out, c.travel_distance_weight)
            if c.siamese_margin > 0 and c.margin_weight > 0:
                terms["margin"] = c.margin_weight * margin_loss(source_out, c.siamese_margin)
        return StepOutput(terms=terms, stats=stats,
                          penalties=[PenaltyInput(critic=self.score(d), real=real, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d, c = nets.generator, nets.critic, self.config
        source, fake = self._fakes(g, batch, ctx)
        fake_out = d(fake)
        real_out = d(self._real(batch)) if self.loss.generator_uses_real else None
        terms = {"adv": self.loss.generator_loss(fake_out, real_out)}
        if c.mode == "translate" and c.travel_weight > 0:
            with torch.no_grad():
                source_out = d(source)
            terms["travel"] = c.travel_weight * travel_loss(source_out, fake_out, c.travel_distance_weight)
        return StepOutput(terms=terms)

    def sample(self, generator: nn.Module, n: int, *, rng: torch.Generator, device: torch.device,
               labels: Tensor | None = None) -> Tensor:
        if self.config.mode == "translate":
            raise ConfigError("this siamese run translates images (variant.mode=translate): use "
                              "`gancore translate`, not `gancore sample`")
        return super().sample(generator, n, rng=rng, device=device, labels=labels)

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        if self.config.mode != "translate":
            return super().translate(generator, x, direction)
        if direction != "a2b":
            raise ConfigError(f"--direction: siamese translates one way, a2b (it has no B -> A generator), "
                              f"got {direction!r}")
        return generator(x)

    def preview(self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, int | None]:
        """generate: samples; translate: a row of A images over the row of their translations."""
        if self.config.mode != "translate":
            return super().preview(generator, batch, n, rng=rng, device=device)
        a = batch.x[:n]
        return torch.cat([a, generator(a)]), len(a)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [Siamese]
