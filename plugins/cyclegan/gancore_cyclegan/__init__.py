"""CycleGAN (Zhu et al. 2017) as a gancore plugin: unpaired image-to-image translation.

Two ResNet generators G: A->B and F: B->A (one player, an ``nn.ModuleDict``), two PatchGAN
critics D_A and D_B (the other player), the least-squares adversarial loss, cycle consistency
L1 both ways, an identity loss (0.5 lambda), a history pool of 50 generated images per critic,
Adam 2e-4 (0.5, 0.999) with linear learning-rate decay over the second half.

Defaults for the built-in 32x32 digits differ from the paper's 256x256 photos in two measured
ways: the generators do not downsample (with the paper's two stride-2 stages a generator sees the
whole 32x32 image, and the pair settles on a permutation of the digits: 0.6% label preservation
on digits <-> inverted digits), and lambda is 2 (at 10 the adversarial term loses and the
translation only brightens the digits: 0.0%). With both: 97.2%. Set
``variant.generator_downsampling=2``, ``variant.residual_blocks=9`` and
``variant.cycle_weight=10`` for the paper's networks on large images.

Domains that also differ by a global turn or mirror (digits <-> quarter-turned digits) are
not learnt by the adversarial and cycle terms (19% label preservation: the pair settles on a
permutation of the digits). With ``variant.orient=auto`` (the default) the core's
``find_orientation`` looks for that turn in the data before training and puts it in front of G
(its inverse in front of F); the identity loss is then taken in the output domain's frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore import (
    Batch,
    Capabilities,
    ConfigError,
    InitReport,
    Networks,
    PenaltyInput,
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
from gancore.translation import OrientMode, orient_generators, orientation_setting

if TYPE_CHECKING:
    from torch import Tensor

    from gancore import TensorData

torch = lazy_module("torch")
nn = lazy_module("torch.nn")


class CycleGANSettings(Settings):
    cycle_weight: float = Field(
        2.0, ge=0.0, description="lambda: weight of the cycle-consistency L1 terms (10 in the paper; "
        "2 suits the 32x32 digits, see the docs)."
    )
    identity_weight: float = Field(
        0.5, ge=0.0, description="Identity loss weight, as a fraction of lambda (0 disables it)."
    )
    pool_size: int = Field(50, ge=0, le=10**5, description="Generated images kept in each critic's history pool.")
    generator_width: int = Field(16, ge=4, le=512, description="Channels of the generators' first layer (ngf).")
    residual_blocks: int = Field(2, ge=1, le=16, description="Residual blocks in each generator.")
    generator_downsampling: int = Field(
        0, ge=0, le=4, description="Stride-2 stages in each generator (2 in the paper, for 256x256 images)."
    )
    critic_width: int = Field(16, ge=4, le=512, description="Channels of the critics' first layer (ndf).")
    critic_layers: int = Field(2, ge=1, le=5, description="Strided layers in each PatchGAN critic.")
    orient: OrientMode = orientation_setting()


#: The paper's networks and lambda, shared by the GPU presets.
PAPER_NETWORKS = {"variant.generator_width": 64, "variant.generator_downsampling": 2,
                  "variant.critic_width": 64, "variant.critic_layers": 3, "variant.cycle_weight": 10.0}


class CycleGAN(Variant):
    """CycleGAN: two generators, two PatchGAN critics, cycle and identity losses."""

    name = "cyclegan"
    Config = CycleGANSettings
    checkpoint_renames = {"critic.pool_a": "state_pool_a", "critic.pool_b": "state_pool_b"}  # before 0.2
    presets = {
        "gpu": gpu_preset("128x128 images on one GPU: the paper's 128-pixel networks (two stride-2 stages, "
                          "6 residual blocks, 70x70-style PatchGAN), lambda 10, batch 4, 20,000 steps",
                          image_size=128, width=None, batch_size=4,
                          settings={**PAPER_NETWORKS, "variant.residual_blocks": 6}),
        "paper": Preset("Zhu et al.'s 256x256 set-up: 9 residual blocks, batch 1, 200,000 steps (200 epochs of "
                        "a 1,000-image domain, the rate decaying over the second half)",
                        {"data.image_size": 256, **PAPER_NETWORKS, "variant.residual_blocks": 9,
                         "train.batch_size": 1, "train.steps": 200000, "log.sample_every": 5000,
                         "log.checkpoint_every": 10000}),
    }

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        c: Any = config  # the PatchGAN's maps, and each generator stage's (a 7x7 reflection pad needs 4x4)
        return Capabilities(min_image_size=max(patchgan_min_image_size(c.critic_layers),
                                               4 * 2 ** c.generator_downsampling))

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear", "decay_start": 0.5}
        return {
            "data": {"name": "digits-pair"},
            "loss": {"name": "least-squares"},
            "train": {"steps": 1200, "batch_size": 16, "n_critic": 1},
            "optim": {"generator": dict(adam), "critic": dict(adam)},
            "log": {"samples": 8},
        }

    def build(self) -> Networks:
        if self.data.domains != 2 or self.data.kind != "image":
            raise ConfigError("data.name: cyclegan needs two unpaired image domains (unpaired or digits-pair)")
        c, ch = self.config, self.data.shape[0]
        from gancore.nets import PatchCritic, ResnetGenerator
        from gancore.translation import Oriented
        from gancore_cyclegan.pool import HistoryPool

        gens = nn.ModuleDict({
            direction: Oriented(ResnetGenerator(ch, ch, c.generator_width, c.residual_blocks,
                                                downsampling=c.generator_downsampling))
            for direction in ("a2b", "b2a")
        })
        critics = nn.ModuleDict({
            "a": PatchCritic(ch, c.critic_width, c.critic_layers),
            "b": PatchCritic(ch, c.critic_width, c.critic_layers),
        })
        pools = {f"pool_{d}": HistoryPool(c.pool_size, self.data.shape) for d in ("a", "b")}
        return Networks(generator=gens, critic=critics, state=pools)

    def initialize(self, nets: Networks, data: TensorData) -> list[InitReport]:
        if self.config.orient == "off":
            return []
        return [orient_generators(data, nets.generator["a2b"], nets.generator["b2a"])]

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        real_a, real_b = batch.x, batch.x_b
        with torch.no_grad():
            fake_b = nets.state["pool_b"](g["a2b"](real_a))
            fake_a = nets.state["pool_a"](g["b2a"](real_b))
        out_a_real, out_a_fake = d["a"](real_a), d["a"](fake_a)
        out_b_real, out_b_fake = d["b"](real_b), d["b"](fake_b)
        return StepOutput(
            terms={"adv_a": self.loss.critic_loss(out_a_real, out_a_fake),
                   "adv_b": self.loss.critic_loss(out_b_real, out_b_fake)},
            penalties=[PenaltyInput(critic=d["a"], real=real_a, fake=fake_a, name="a"),
                       PenaltyInput(critic=d["b"], real=real_b, fake=fake_b, name="b")],
        )

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d, c = nets.generator, nets.critic, self.config
        real_a, real_b = batch.x, batch.x_b
        fake_b, fake_a = g["a2b"](real_a), g["b2a"](real_b)
        uses_real = self.loss.generator_uses_real  # relativistic losses compare with the real batch
        terms = {
            "adv_a2b": self.loss.generator_loss(d["b"](fake_b), d["b"](real_b) if uses_real else None),
            "adv_b2a": self.loss.generator_loss(d["a"](fake_a), d["a"](real_a) if uses_real else None),
            "cycle": c.cycle_weight * ((g["b2a"](fake_b) - real_a).abs().mean()
                                       + (g["a2b"](fake_a) - real_b).abs().mean()),
        }
        if c.identity_weight > 0:  # in the output domain's frame: without the orientation change
            terms["identity"] = c.cycle_weight * c.identity_weight * (
                (g["a2b"](real_b, transform=False) - real_b).abs().mean()
                + (g["b2a"](real_a, transform=False) - real_a).abs().mean())
        return StepOutput(terms=terms)

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        if direction not in ("a2b", "b2a"):
            raise ConfigError(f"--direction: expected a2b or b2a, got {direction!r}")
        return generator[direction](x)

    def preview(self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, int | None]:
        """Rows: A, G(A), F(G(A)), then B, F(B), G(F(B))."""
        a, b = batch.x[:n], batch.x_b[:n]
        g_ab, g_ba = generator["a2b"], generator["b2a"]
        fake_b, fake_a = g_ab(a), g_ba(b)
        rows = [a, fake_b, g_ba(fake_b), b, fake_a, g_ab(fake_a)]
        return torch.cat(rows), len(a)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [CycleGAN]
