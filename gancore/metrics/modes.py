"""Mode coverage on Gaussian mixtures (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gancore.errors import ConfigError
from gancore.lazy import lazy_module
from gancore.metrics import Metric

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_module("torch")

if TYPE_CHECKING:
    from gancore.metrics import MetricContext


def mode_stats(samples: Tensor, centres: Tensor, std: float) -> dict[str, Any]:
    """Modes captured and the share of high-quality samples.

    A sample is high quality when it lies within 3 standard deviations of its nearest mode; a
    mode is captured when it is the nearest mode of at least one high-quality sample.
    """
    dist = torch.cdist(samples.double(), centres.double())
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= 3.0 * std
    captured = torch.unique(nearest[good])
    per_mode = torch.bincount(nearest[good], minlength=len(centres))
    return {
        "modes": int(captured.numel()),
        "total_modes": int(len(centres)),
        "high_quality": float(good.double().mean()),
        "smallest_mode_share": float(per_mode.min()) / max(int(good.sum()), 1),
        "n_samples": int(len(samples)),
    }


class Modes(Metric):
    """Modes captured and high-quality share for the 2-D Gaussian mixtures (2,500 samples in the
    papers' protocol: ``--n 2500``)."""

    name = "modes"
    tasks = ("vector",)
    default_for = ("vector",)
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        real, _ = ctx.real()
        if real.landmarks is None or real.scale is None:
            raise ConfigError(f"metric modes: data source {ctx.dataset!r} has no mode centres "
                              "(use gaussian-ring or gaussian-grid)")
        fake = ctx.samples()
        return mode_stats(fake.reshape(len(fake), -1), real.landmarks, float(real.scale))
