"""Two image domains: unpaired folders in the CycleGAN layout, restyled digits, and paired images in
pix2pix's layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from gancore.data import CropSettings, DataSource, ImageSettings, TensorData
from gancore.data.digits import Digits, digits_split
from gancore.data.image_folder import image_files, read_image
from gancore.errors import ConfigError
from gancore.lazy import lazy_module

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


class UnpairedSettings(ImageSettings, CropSettings):
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
        return read_images(files, self.config)

    def load(self) -> TensorData:
        root = Path(self.config.path).expanduser()
        if not root.is_dir():
            raise ConfigError(f"data.path: {root} is not a folder")
        c = self.config
        return TensorData(x=self._domain(root, "A"), x_b=self._domain(root, "B"), flip=c.flip,
                          crop_size=c.crop_size(c.image_size))


def read_images(files: list[Path], c: UnpairedSettings | PairedSettings,
                box: tuple[float, float] | None = None) -> torch.Tensor:
    """``files`` decoded at the stored side of ``c``'s crop mode, in [-1, 1]."""
    side = c.stored_size(c.image_size)
    return TensorData.decoded(torch.from_numpy(np.stack([
        read_image(f, side, c.channels, box=box, square_only=c.crop == "none") for f in files])))


class PairedSettings(ImageSettings, CropSettings):
    path: str = Field(..., description="DIR/train/*.jpg of A|B side-by-side images (pix2pix's downloads), or "
                                       "DIR/A/train/NAME beside DIR/B/train/NAME.")
    split: Literal["train", "val", "test"] = Field("train", description="Which folder: train, val or test.")
    image_size: int = Field(256, ge=8, le=1024, description="Side of the square images, pixels.")
    channels: Literal[1, 3] = Field(3, description="1 for grayscale, 3 for RGB (every image is converted).")
    direction: Literal["a2b", "b2a"] = Field("a2b", description="a2b: the left half (or A/) is the input; b2a: "
                                                                "the right half (or B/) is.")
    flip: bool = Field(True, description="Random horizontal flips, the same for both images of a pair.")


class Paired(DataSource):
    """Aligned pairs (x, x_b) for pix2pix-style training: batches keep each pair together."""

    name = "paired"
    Config = PairedSettings

    def _pairs(self) -> tuple[list[tuple[Path, Path]], bool]:
        root, split = Path(self.config.path).expanduser(), self.config.split
        if (root / split).is_dir():
            files = image_files(root / split)
            if not files:
                raise ConfigError(f"data.path: no images in {root / split}")
            return [(f, f) for f in files], True
        a, b = root / "A" / split, root / "B" / split
        if not (a.is_dir() and b.is_dir()):
            raise ConfigError(f"data.path: expected {root / split}/ (A|B images) or {a}/ beside {b}/")
        names_a, names_b = {f.name for f in image_files(a)}, {f.name for f in image_files(b)}
        if names_a != names_b:
            odd = sorted(names_a ^ names_b)
            where = a if odd[0] in names_a else b
            raise ConfigError(f"data.path: {where / odd[0]} has no partner of the same name in the other folder "
                              f"({len(odd)} unmatched)")
        if not names_a:
            raise ConfigError(f"data.path: no images in {a}")
        return [(a / n, b / n) for n in sorted(names_a)], False

    def load(self) -> TensorData:
        c = self.config
        pairs, side_by_side = self._pairs()
        halves = [(0.0, 0.5), (0.5, 1.0)] if side_by_side else [None, None]
        if c.direction == "b2a":
            halves, pairs = halves[::-1], [(q, p) for p, q in pairs]

        x = read_images([p for p, _ in pairs], c, halves[0])
        x_b = read_images([q for _, q in pairs], c, halves[1])
        return TensorData(x=x, x_b=x_b, flip=c.flip, paired=True, crop_size=c.crop_size(c.image_size))


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


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[N, C, H, W]`` blurred by a separable Gaussian of ``sigma`` pixels (edges replicated)."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-t**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


class DigitsRestoreSettings(ImageSettings):
    sigma: float = Field(1.0, ge=0.0, le=16.0, description="Gaussian blur of the input digits, pixels at image_size "
                         "(0: none).")
    erase: int = Field(14, ge=0, le=1024, description="Side of a square erased from each input digit at a place "
                       "drawn per image (fixed by the image's index; 0: none): the strokes there must be invented.")
    split: Literal["train", "test"] = Field("train", description="The digits' fixed 80/20 split.")


class DigitsRestore(DataSource):
    """Built-in paired digits (pix2pix): A a damaged digit, B the same digit intact.

    A is blurred (a Gaussian of ``sigma`` pixels) and has an ``erase``-sided square set to the
    background at a place drawn per image; the class is kept as a hidden label (``y``, ``y_b``) for
    evaluation. A fair test of a paired translator: no per-pixel map can restore it (the output at a
    pixel depends on its neighbourhood, and inside the hole on the rest of the digit), the erased
    strokes are under-determined (a model trained on L1 alone averages their possibilities into a
    smudge, which pix2pix's critic refuses), and the digit must survive (a classifier trained on real
    digits reads the outputs).
    """

    name = "digits-restore"
    Config = DigitsRestoreSettings

    def load(self) -> TensorData:
        c = self.config
        digits = Digits(Digits.Config(image_size=c.image_size, split=c.split)).load()
        sharp = digits.x.contiguous()
        damaged = gaussian_blur(sharp, c.sigma) if c.sigma > 0 else sharp.clone()
        side = min(c.erase, c.image_size)
        if side:
            gen = torch.Generator().manual_seed(20261201 + (c.split == "test"))
            corners = torch.randint(0, c.image_size - side + 1, (len(sharp), 2), generator=gen)
            for img, (top, left) in zip(damaged, corners.tolist(), strict=True):
                img[:, top:top + side, left:left + side] = -1.0
        return TensorData(x=damaged.contiguous(), y=digits.y, num_classes=10, x_b=sharp, y_b=digits.y.clone(),
                          paired=True)
