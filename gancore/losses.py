"""Built-in adversarial losses, each a pure pair of functions of the critic's outputs.

Every loss computes in float32 (outputs are upcast), so they are safe under autocast; the
sigmoid-based ones use the log-sum-exp forms (``softplus``), never ``sigmoid`` + ``BCELoss``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from gancore.errors import ConfigError
from gancore.interfaces import Loss, Settings
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


class NonSaturatingSettings(Settings):
    real_label: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Target for real samples in the critic's loss; 0.9 is one-sided label "
        "smoothing (Salimans et al. 2016).",
    )


class NonSaturatingLoss(Loss):
    """Goodfellow et al.'s loss with the non-saturating generator: BCE with logits."""

    name = "nonsaturating"
    Config = NonSaturatingSettings

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        real, fake = real_out.float(), fake_out.float()
        if self.config.real_label == 1.0:
            real_term = F.softplus(-real).mean()
        else:
            target = real.new_full(real.shape, self.config.real_label)
            real_term = F.binary_cross_entropy_with_logits(real, target)
        return real_term + F.softplus(fake).mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return F.softplus(-fake_out.float()).mean()


class MinimaxLoss(NonSaturatingLoss):
    """The original minimax game: the generator minimises log(1 - D(G(z)))."""

    name = "minimax"

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -F.softplus(fake_out.float()).mean()


class LeastSquaresSettings(Settings):
    real_target: float = Field(1.0, description="Critic target b for real samples.")
    fake_target: float = Field(0.0, description="Critic target a for generated samples.")
    generator_target: float = Field(
        1.0, description="Value c the generator wants the critic to give its samples."
    )


class LeastSquaresLoss(Loss):
    """LSGAN (Mao et al. 2017): squared distances to targets, with the 1/2 factors."""

    name = "least-squares"
    Config = LeastSquaresSettings

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        c = self.config
        return 0.5 * (real_out.float() - c.real_target).pow(2).mean() + 0.5 * (
            fake_out.float() - c.fake_target
        ).pow(2).mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * (fake_out.float() - self.config.generator_target).pow(2).mean()


class HingeLoss(Loss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    name = "hinge"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 - real_out.float()).mean() + F.relu(1.0 + fake_out.float()).mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.float().mean()


class WassersteinLoss(Loss):
    """WGAN (Arjovsky et al. 2017): the critic's mean difference, unbounded output."""

    name = "wasserstein"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.float().mean() - real_out.float().mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return -fake_out.float().mean()



def squared_distance(a: Tensor, b: Tensor | float) -> Tensor:
    """Squared Euclidean distance per sample, over every non-batch dimension, in float32.

    Scores of shape ``[N]`` are treated as vectors of length 1.
    """
    diff = a.float() - (b.float() if isinstance(b, torch.Tensor) else b)
    return diff.pow(2).reshape(diff.shape[0], -1).sum(1)


def contrastive(a: Tensor, b: Tensor, same: Tensor, margin: float) -> Tensor:
    """Hadsell et al.'s contrastive loss per pair, in seed 000's form, halved as in the paper.

    ``same`` true: 1/2 d^2 (pull the pair together); false: 1/2 max(0, margin - d^2) (push the
    pair at least ``margin`` apart in squared distance). Returns ``[N]`` (one value per pair).
    """
    d2 = squared_distance(a, b)
    return 0.5 * torch.where(same.bool(), d2, F.relu(margin - d2))


class ContrastiveSettings(Settings):
    margin: float = Field(
        1.0, gt=0.0, description="Squared distance beyond which dissimilar pairs cost nothing."
    )


class ContrastiveLoss(Loss):
    """The contrastive loss (Hadsell et al. 2006) as a GAN loss for critics that output vectors.

    Two classes, real and generated. The critic pulls pairs of real encodings together (real i
    with real i+1, cyclically) and pushes each real encoding at least ``margin`` away from a
    generated one; the generator wants its encodings close to the real ones (it sees the real
    batch's encodings, so ``generator_uses_real``).
    """

    name = "contrastive"
    Config = ContrastiveSettings
    generator_uses_real = True

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        n, margin = real_out.shape[0], self.config.margin
        same = torch.ones(n, dtype=torch.bool, device=real_out.device)
        pull = contrastive(real_out, real_out.roll(1, 0), same, margin) if n > 1 else real_out.new_zeros(1)
        push = contrastive(real_out, fake_out, ~same, margin)
        return pull.mean() + push.mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        if real_out is None:
            raise ConfigError("the contrastive loss needs the critic's outputs on a real batch")
        same = torch.ones(fake_out.shape[0], dtype=torch.bool, device=fake_out.device)
        return contrastive(fake_out, real_out.detach(), same, self.config.margin).mean()


class SiameseAnchorSettings(Settings):
    anchor: float = Field(
        0.0, description="The fixed point real encodings are pulled to: every component has this value "
        "(seed 000 uses the origin)."
    )
    margin: float = Field(
        1.0, gt=0.0, description="Squared distance from the anchor that generated encodings are pushed beyond."
    )
    fake_point: float | None = Field(
        None, description="Null: push fakes beyond the margin (seed 000's triplet form). A number: pull "
        "fake encodings to this second fixed point instead, the two-point form that seed 000 says a "
        "length-1 critic reduces to (anchor 1 and fake_point 0 is exactly least-squares)."
    )


class SiameseAnchorLoss(Loss):
    """Seed 000's Siamese GAN loss: a triplet loss with a fixed anchor, for vector outputs.

    Critic: 1/2 |S(real) - a|^2 + 1/2 max(0, margin - |S(fake) - a|^2); generator:
    1/2 |S(fake) - a|^2. The halves make the length-1, two-point form (``anchor = 1``,
    ``fake_point = 0``) equal to least-squares with its defaults, term for term.
    """

    name = "siamese-anchor"
    Config = SiameseAnchorSettings

    def distance(self, out: Tensor) -> Tensor:
        """Squared distance of each encoding to the anchor: the realism score (0 is most real)."""
        return squared_distance(out, self.config.anchor)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        c = self.config
        if c.fake_point is None:
            fake_term = F.relu(c.margin - self.distance(fake_out))
        else:
            fake_term = squared_distance(fake_out, c.fake_point)
        return 0.5 * self.distance(real_out).mean() + 0.5 * fake_term.mean()

    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        return 0.5 * self.distance(fake_out).mean()


BUILTIN_LOSSES: list[type[Loss]] = [
    NonSaturatingLoss,
    MinimaxLoss,
    LeastSquaresLoss,
    HingeLoss,
    WassersteinLoss,
    ContrastiveLoss,
    SiameseAnchorLoss,
]

__all__ = [
    "BUILTIN_LOSSES",
    "ContrastiveLoss",
    "HingeLoss",
    "LeastSquaresLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "SiameseAnchorLoss",
    "WassersteinLoss",
    "contrastive",
    "squared_distance",
]
