"""Pictures of samples: image grids, and scatter plots for 2-D vector data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from gancore.files import atomic_path
from gancore.images import save_grid


def scatter_plot(
    points: np.ndarray, path: str | Path, *, reference: np.ndarray | None = None, size: int = 512
) -> None:
    """A PNG scatter plot of ``[N, 2]`` points (blue) over optional reference points (red)."""
    from PIL import Image, ImageDraw

    # The window is the reference's extent when there is one (samples far off are clipped),
    # else the central 99% of the samples.
    frame = reference if reference is not None else points
    lo = frame.min(axis=0) if reference is not None else np.percentile(points, 0.5, axis=0)
    hi = frame.max(axis=0) if reference is not None else np.percentile(points, 99.5, axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.3, 0.5)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)

    def to_px(p: np.ndarray) -> np.ndarray:
        q = (p - centre) / half
        return np.stack([(q[:, 0] + 1) * size / 2, (1 - q[:, 1]) * size / 2], axis=1)

    if reference is not None:
        for x, y in to_px(reference):
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(220, 40, 40), width=2)
    for x, y in to_px(points):
        draw.rectangle((x - 1, y - 1, x + 1, y + 1), fill=(30, 60, 200))
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_samples(
    x: Tensor, path: str | Path, reference: np.ndarray | None = None, nrow: int | None = None
) -> None:
    """An image grid for ``[N, C, H, W]`` samples (``nrow`` per row), a scatter plot for ``[N, 2]``."""
    if x.dim() == 4:
        save_grid(x, path, nrow=nrow)
    elif x.dim() == 2 and x.shape[1] == 2:
        scatter_plot(x.detach().float().cpu().numpy(), path, reference=reference)
    else:
        raise ValueError(f"cannot picture samples of shape {tuple(x.shape)}")
