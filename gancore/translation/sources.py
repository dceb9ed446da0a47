"""Two unpaired image domains: folders in the CycleGAN layout, and restyled digits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from gancore.data import DataSource, ImageSettings, TensorData
from gancore.data.digits import Digits, digits_split
from gancore.data.image_folder import image_files, load_image
from gancore.errors import ConfigError


class UnpairedSettings(ImageSettings):
    path: str = Field(..., description="Folder holding trainA/ and trainB/ (and optionally testA/, testB/).")
    split: Literal["train", "test"] = Field("train", description="Which folders: trainA/B or testA/B.")
    channels: Literal[1, 3] = Field(3, description="1 for grayscale, 3 for RGB (every image is converted).")
    flip: bool = Field(False, description="Random horizontal flips when batches are drawn.")


class Unpaired(DataSource):
    """Unpaired domains A and B from ``path/trainA`` and ``path/trainB`` (CycleGAN's layout)."""

    name = "unpaired"
    Config = UnpairedSettings

    def _domain(self, root: Path, domain: str) -> torch.Tensor:
        folder = root / f"{self.config.split}{domain}"
        if not folder.is_dir():
            raise ConfigError(f"data.path: {folder} is missing (expected {self.config.split}A/ and "
                              f"{self.config.split}B/ in {root})")
        files = image_files(folder)
        if not files:
            raise ConfigError(f"data.path: no images found in {folder}")
        return torch.stack([load_image(f, self.config.image_size, self.config.channels) for f in files])

    def load(self) -> TensorData:
        root = Path(self.config.path).expanduser()
        if not root.is_dir():
            raise ConfigError(f"data.path: {root} is not a folder")
        return TensorData(x=self._domain(root, "A"), x_b=self._domain(root, "B"), flip=self.config.flip)


def restyle(x: torch.Tensor, style: str) -> torch.Tensor:
    """Digits in [-1, 1] restyled: inverted, rotated a quarter turn, or thickened (dilated)."""
    if style == "invert":
        return -x
    if style == "rotate":
        return torch.rot90(x, 1, dims=(2, 3))
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)  # thicken: a 3x3 dilation


class DigitsPairSettings(ImageSettings):
    b_style: Literal["invert", "rotate", "thicken"] = Field(
        "invert", description="How domain B restyles its digits."
    )
    split: Literal["train", "test"] = Field(
        "train", description="The digits' fixed 80/20 split the two halves are drawn from."
    )


class DigitsPair(DataSource):
    """Built-in unpaired domains: A is half of the digits, B the *other* half restyled.

    No image has its pair in the other domain. The digit classes are kept as hidden labels
    (``y`` for A, ``y_b`` for B) for evaluation only.
    """

    name = "digits-pair"
    Config = DigitsPairSettings

    def load(self) -> TensorData:
        digits = Digits(Digits.Config(image_size=self.config.image_size)).load()
        idx = digits_split(len(digits), self.config.split)
        a, b = idx[0::2], idx[1::2]
        return TensorData(x=digits.x[a].contiguous(), y=digits.y[a].contiguous(), num_classes=10,
                          x_b=restyle(digits.x[b], self.config.b_style).contiguous(),
                          y_b=digits.y[b].contiguous())
