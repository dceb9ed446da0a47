"""Sample grids as PNG, without torchvision."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gancore.files import atomic_path


def to_uint8(x: Tensor) -> np.ndarray:
    """``[N, C, H, W]`` in [-1, 1] to ``[N, H, W, C]`` uint8."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def make_grid(x: Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile images ``[N, C, H, W]`` (in [-1, 1]) into one ``[H', W', C]`` uint8 array."""
    imgs = to_uint8(x)
    n, h, w, c = imgs.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = imgs[i]
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def save_png(array: np.ndarray, path: str | Path) -> None:
    from PIL import Image

    img = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_grid(x: Tensor, path: str | Path, nrow: int | None = None) -> None:
    """Write a grid of images; small images are upscaled so the grid is at least ~256 px."""
    side = x.shape[-1]
    scale = max(1, 64 // side)
    save_png(make_grid(x, nrow=nrow, scale=scale), path)
