"""Built-in adversarial losses, each a pure pair of functions of the critic's outputs.

Every loss computes in float32 (outputs are upcast), so they are safe under autocast; the
sigmoid-based ones use the log-sum-exp forms (``softplus``), never ``sigmoid`` + ``BCELoss``.
"""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from gancore.interfaces import Loss, Settings


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


BUILTIN_LOSSES: list[type[Loss]] = [
    NonSaturatingLoss,
    MinimaxLoss,
    LeastSquaresLoss,
    HingeLoss,
    WassersteinLoss,
]
