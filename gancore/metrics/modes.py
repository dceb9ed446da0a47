"""Mode coverage on Gaussian mixtures (VEEGAN / PacGAN protocol)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gancore.errors import ConfigError
from gancore.metrics import Metric


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
    """Modes captured and high-quality share for the 2-D Gaussian mixtures."""

    name = "modes"

    def compute(self, fake: Tensor, real: Tensor, **context: Any) -> dict[str, Any]:
        centres, std = context.get("landmarks"), context.get("scale")
        if centres is None or std is None:
            raise ConfigError("metric modes: the data source has no mode centres (use gaussian-ring or gaussian-grid)")
        return mode_stats(fake.reshape(len(fake), -1), centres, float(std))
