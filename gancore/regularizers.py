"""Built-in critic regularizers: gradient penalty, R1/R2, weight clipping, spectral norm.

Penalties are taken through the ``grad_fn`` the kernel hands them, which follows PyTorch's AMP
gradient-penalty recipe (gradients of the *scaled* outputs under fp16, unscaled in float32);
norms are computed in float32, per sample, over every non-batch dimension.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from gancore.interfaces import GradFn, PenaltyInput, PenaltySettings, Regularizer, Settings
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    from torch import Tensor, nn

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")
nn = lazy_module("torch.nn")


def per_sample_norm(grad: Tensor) -> Tensor:
    """L2 norm of each sample's gradient over all non-batch dimensions, in float32."""
    return grad.float().flatten(1).norm(2, dim=1)


def _detached(x: Tensor) -> Tensor:
    return x.detach().requires_grad_(True)


class GradientPenaltySettings(PenaltySettings):
    weight: float = Field(10.0, ge=0.0, description="lambda: weight of the penalty.")
    every: int = Field(1, ge=1, le=10**6, description="Apply on every k-th critic step, weighted by k.")
    target: float = Field(1.0, gt=0.0, description="Gradient norm the penalty pulls towards.")
    one_sided: bool = Field(
        False, description="Penalise only norms above the target: max(0, |grad| - target)^2."
    )


class GradientPenalty(Regularizer):
    """WGAN-GP (Gulrajani et al. 2017): (|grad D(x_hat)| - 1)^2 on real/fake interpolates.

    One interpolation weight per sample (not per pixel); the norm is per sample over C x H x W.
    """

    name = "gradient-penalty"
    Config = GradientPenaltySettings
    needs_double_backward = True

    def penalty(self, inputs: PenaltyInput, grad_fn: GradFn) -> Tensor:
        real, fake = inputs.real.detach(), inputs.fake.detach()
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        alpha = torch.rand(shape, device=real.device, dtype=torch.float32)
        mixed = (alpha * real.float() + (1.0 - alpha) * fake.float()).to(real.dtype)
        if real.dim() == 4 and not real.is_contiguous() and real.is_contiguous(memory_format=torch.channels_last):
            # keep the batch's channels-last layout (a 1-channel NCHW tensor counts as both: leave it)
            mixed = mixed.contiguous(memory_format=torch.channels_last)
        mixed = _detached(mixed)
        norm = per_sample_norm(grad_fn(inputs.critic(mixed), mixed))
        gap = norm - self.config.target
        if self.config.one_sided:
            gap = F.relu(gap)
        return gap.pow(2).mean()


class R1Settings(PenaltySettings):
    weight: float = Field(10.0, ge=0.0, description="gamma: the penalty is gamma/2 |grad|^2.")
    every: int = Field(
        1, ge=1, le=10**6, description="Lazy regularization: every k-th critic step, weighted by k (StyleGAN2 uses 16)."
    )


class R1(Regularizer):
    """Zero-centred gradient penalty on real data (Mescheder et al. 2018): 1/2 |grad D(x)|^2."""

    name = "r1"
    Config = R1Settings
    needs_double_backward = True

    def samples(self, inputs: PenaltyInput) -> Tensor:
        return inputs.real

    def penalty(self, inputs: PenaltyInput, grad_fn: GradFn) -> Tensor:
        x = _detached(self.samples(inputs))
        grad = grad_fn(inputs.critic(x), x)
        return 0.5 * grad.float().flatten(1).pow(2).sum(1).mean()


class R2(R1):
    """Zero-centred gradient penalty on generated data: 1/2 |grad D(G(z))|^2."""

    name = "r2"

    def samples(self, inputs: PenaltyInput) -> Tensor:
        return inputs.fake


class WeightClipSettings(Settings):
    clip: float = Field(0.01, gt=0.0, description="Clamp every critic parameter to [-clip, clip].")


class WeightClip(Regularizer):
    """WGAN's weight clipping (Arjovsky et al. 2017), after every critic step."""

    name = "weight-clip"
    Config = WeightClipSettings

    def after_step(self, critic: nn.Module) -> None:
        c = self.config.clip
        params = [p for p in critic.parameters() if p.requires_grad]
        with torch.no_grad():
            torch._foreach_clamp_min_(params, -c)
            torch._foreach_clamp_max_(params, c)


class SpectralNormSettings(Settings):
    n_power_iterations: int = Field(1, ge=1, le=100, description="Power iterations per forward pass.")


class SpectralNorm(Regularizer):
    """Spectral normalisation (Miyato et al. 2018) of every conv and linear layer of the critic."""

    name = "spectral-norm"
    Config = SpectralNormSettings

    def attach(self, critic: nn.Module) -> nn.Module:
        from torch.nn.utils import parametrize
        from torch.nn.utils.parametrizations import spectral_norm

        for module in list(critic.modules()):
            is_layer = isinstance(module, nn.Conv2d | nn.Conv1d | nn.Linear | nn.ConvTranspose2d)
            if is_layer and not parametrize.is_parametrized(module, "weight"):
                spectral_norm(module, n_power_iterations=self.config.n_power_iterations)
        return critic


BUILTIN_REGULARIZERS: list[type[Regularizer]] = [GradientPenalty, R1, R2, WeightClip, SpectralNorm]
