"""The 8x8 handwritten digits bundled with scikit-learn (no download)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gancore.data import DataSource, ImageSettings, TensorData
from gancore.lazy import lazy_module

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


class DigitsSettings(ImageSettings):
    split: Literal["all", "train", "test"] = Field(
        "all",
        description="Which digits: all 1,797, or a fixed 80/20 train/test split "
        "(the same on every machine) for evaluation.",
    )


def digits_split(n: int, split: str) -> torch.Tensor:
    """Indices of a fixed, seed-independent 80/20 split of ``n`` samples."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(20260101))
    cut = int(0.8 * n)
    return {"all": torch.arange(n), "train": order[:cut].sort().values,
            "test": order[cut:].sort().values}[split]


class Digits(DataSource):
    """scikit-learn's 1,797 handwritten digits, upsampled to ``image_size`` and scaled to [-1, 1].

    Labels 0-9 are kept. Upsampling is bilinear (align_corners=False).
    """

    name = "digits"
    Config = DigitsSettings

    def load(self) -> TensorData:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
        size = self.config.image_size
        if size != 8:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = (x.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()
        y = torch.tensor(bunch.target, dtype=torch.int64)
        idx = digits_split(len(y), self.config.split)
        return TensorData(x=x[idx].contiguous(), y=y[idx].contiguous(), num_classes=10)
