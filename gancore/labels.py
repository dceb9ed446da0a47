"""Class labels through the core: validation and the label layouts used for sampling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gancore.errors import ConfigError
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_module("torch")


def check_labels(labels: Tensor, num_classes: int, key: str = "labels") -> Tensor:
    """Return ``labels`` as int64 if they are class indices in ``[0, num_classes)``."""
    if num_classes <= 0:
        raise ConfigError(f"{key}: the run's data has no classes, so it takes no labels")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dim() != 1:
        raise ConfigError(f"{key}: expected a 1-D tensor of integer class indices, got {labels.dtype} "
                          f"of shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ConfigError(
            f"{key}: class {int(labels.max()) if int(labels.max()) >= num_classes else int(labels.min())} "
            f"is out of range; this run has {num_classes} classes (0-{num_classes - 1})"
        )
    return labels.long()


def balanced_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """``0, 1, ..., C-1, 0, 1, ...``: every class equally often."""
    return torch.arange(n, device=device) % num_classes


def class_rows(per_class: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """``0, 0, ..., 1, 1, ...``: ``per_class`` of each class in turn (one grid row per class)."""
    return torch.arange(num_classes, device=device).repeat_interleave(per_class)
