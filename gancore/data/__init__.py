"""Data sources: the interface and the built-in sources (registered by ``gancore.builtin``).

A source gives its dataset as ``TensorData``: float tensors in memory, uint8 pixels (a pack's
memory map, kept on the device when small), or rows decoded from their files batch by batch
(``stream``). The kernel's sampler draws every batch's indices, flips and crops from its own
checkpointed generator, so the batch order is part of the resumable state whichever it is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from gancore.interfaces import Configurable, DataSpec, Settings
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    from torch import Tensor

torch = lazy_module("torch")


@dataclass
class TensorData:
    """A whole dataset: in memory, memory-mapped uint8, or decoded from files on demand.

    ``x`` is ``[N, C, H, W]`` in [-1, 1] for images or ``[N, D]`` for vectors; ``y`` holds
    int64 labels in ``[0, num_classes)`` or is None.
    """

    x: Tensor
    y: Tensor | None = None
    num_classes: int = 0
    landmarks: Tensor | None = None
    """Reference points drawn under scatter plots of vector samples (a mixture's mode centres)."""
    scale: float | None = None
    """The spread of each mode around its landmark (a mixture's standard deviation)."""
    x_b: Tensor | None = None
    """A second, unpaired domain (image-to-image translation): drawn independently of ``x``."""
    y_b: Tensor | None = None
    """Labels of the second domain (kept for evaluation; translation variants ignore them)."""
    flip: bool = False
    """Flip images horizontally at random when batches are drawn (augmentation)."""
    paired: bool = False
    """``x_b[i]`` is the partner of ``x[i]`` (pix2pix's aligned pairs): batches then take the same rows,
    and the same flips, of both; otherwise the two domains are drawn independently."""
    crop_size: int | None = None
    """Images are stored larger (``load_size``) and each batch takes a random ``crop_size`` square of
    each, drawn from the sampler's generator (the same square for both images of a pair); evaluation
    and progress grids see the centre square. None: used whole."""
    resident_bytes: int | None = None
    """For uint8 images (a pack): data up to this many bytes are copied onto the training device;
    larger data stay memory-mapped and batches are gathered from the file in the background.
    None: always copied."""
    notes: list[str] = field(default_factory=list)
    """What the source left out and why (ignored folders, skipped files): said to the user when the
    data is loaded (``note: ...``)."""

    @property
    def encoded(self) -> bool:
        """True when images are stored as uint8 pixels (a pack), decoded to [-1, 1] per batch."""
        return self.x.dtype == torch.uint8

    @staticmethod
    def decoded(t: Tensor | None) -> Tensor | None:
        """``t`` as float32 in [-1, 1]: uint8 pixels are decoded, anything else is returned as is."""
        if t is None or t.dtype != torch.uint8:
            return t
        if not isinstance(t, torch.Tensor):  # rows decoded from files (FileRows): all of them
            t = t[:]
        return t.float().div_(127.5).sub_(1.0)

    def centred(self, t: Tensor | None) -> Tensor | None:
        """``t`` (rows of ``x`` or ``x_b``) decoded and, under ``crop_size``, cut to the centre square:
        the images evaluation and progress grids compare, the side the networks see."""
        t = self.decoded(t)
        if t is None or not self.crop_size or t.dim() != 4:
            return t
        top, left = (t.shape[-2] - self.crop_size) // 2, (t.shape[-1] - self.crop_size) // 2
        return t[..., top:top + self.crop_size, left:left + self.crop_size].contiguous()

    @property
    def kind(self) -> str:
        return "image" if self.x.dim() == 4 else "vector"

    @property
    def spec(self) -> DataSpec:
        shape = tuple(self.x.shape[1:])
        if self.crop_size and self.kind == "image":
            shape = (shape[0], self.crop_size, self.crop_size)
        return DataSpec(kind=self.kind, shape=shape, num_classes=self.num_classes,
                        domains=1 if self.x_b is None else 2, paired=self.paired)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def check(self, where: str) -> None:
        """The shapes and labels a source declares, checked when it is loaded (``where`` names it in the
        error, e.g. ``data.path: ~/mnist``): images ``[N, C, S, S]`` with N, S >= 1 or vectors ``[N, D]``;
        labels one integer per sample within ``[0, num_classes)``; a second domain of the first's kind."""
        from gancore.errors import ConfigError

        for name, x, y in (("", self.x, self.y), (" second-domain", self.x_b, self.y_b)):
            if x is None:
                continue
            shape = list(x.shape)
            image = len(shape) == 4 and shape[2] == shape[3] and min(shape) >= 1
            if not (image or (len(shape) == 2 and min(shape) >= 1)):
                raise ConfigError(f"{where}: the{name} samples are {shape}; expected square images [N, C, S, S] "
                                  "with N, S >= 1, or vectors [N, D]")
            if y is None:
                continue
            if y.dim() != 1 or len(y) != shape[0] or y.dtype.is_floating_point or y.dtype == torch.bool:
                raise ConfigError(f"{where}: the{name} labels are {y.dtype} {list(y.shape)}; expected one integer "
                                  f"label per sample [{shape[0]}]")
            from gancore.limits import MAX_CLASSES

            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.num_classes or self.num_classes > MAX_CLASSES:
                raise ConfigError(f"{where}: the{name} labels run from {low} to {high}, outside "
                                  f"0..{self.num_classes - 1} (the source has {self.num_classes} classes)")


@dataclass
class DecodePlan:
    """How ``gancore data pack`` decodes a file-backed source in worker processes: ``decode(path)``
    returns one uint8 ``[C, H, W]`` image of ``shape`` (it must be picklable: a module-level function
    or a ``functools.partial`` of one) and raises :class:`~gancore.ConfigError` for a bad file."""

    files: list[Path]
    decode: Callable[[Path], object]
    shape: tuple[int, int, int]
    labels: list[int] | None = None
    num_classes: int = 0
    crop: str = "none"
    resize_filter: str = "none"
    crop_size: int | None = None
    """Images decoded at ``shape`` are cut to random squares of this side per batch (``crop=random``)."""
    notes: list[str] = field(default_factory=list)
    """What the source left out and why (see :attr:`TensorData.notes`)."""


class DataSource(Configurable, ABC):
    """A named source of training data, with its own settings model ``Config``."""

    name: ClassVar[str]
    data_kind: ClassVar[str] = "image"
    """``"image"`` or ``"vector"``: what :meth:`load` gives, known before loading (variants'
    :meth:`~gancore.Variant.data_defaults` depend on it)."""

    @abstractmethod
    def load(self) -> TensorData:
        """Load the dataset (never from the network)."""


class _RecordedSettings(Settings):
    """The settings a checkpoint recorded for a source that is not available: kept as they were."""

    model_config = ConfigDict(extra="allow")


def unavailable_source(name: str, kind: str, reason: str) -> type[DataSource]:
    """A stand-in for the data source ``name`` of a checkpoint's run when it cannot be built here (not
    installed, or its settings no longer validate): the networks need only the stored data spec, and
    what needs the data itself (real-data metrics) gets one line saying why it is missing."""

    class Unavailable(DataSource):
        __doc__ = f"The run's data source {name!r}, not available here: {reason}."
        data_kind = kind
        Config = _RecordedSettings

        def load(self) -> TensorData:
            from gancore.errors import ConfigError

            raise ConfigError(f"data.name: the run's data source {name!r} is not available here ({reason}); "
                              "sampling and translating need only the checkpoint, but this needs the data")

    Unavailable.name = name
    return Unavailable


class ImageSettings(Settings):
    """Settings shared by the image sources."""

    image_size: int = Field(32, ge=8, le=1024, description="Side of the square images, pixels.")


class CropSettings(Settings):
    """How a file-backed source makes square images of ``image_size`` from files of any shape."""

    crop: Literal["centre", "random", "none"] = Field(
        "centre", description="centre: the largest centred square, resized to image_size; random: that square "
        "resized to load_size, and a random image_size square of it per batch (drawn from the sampler's "
        "generator, so it resumes exactly; CycleGAN/pix2pix's resize_and_crop); none: images must be square "
        "already, and are resized to image_size.")
    load_size: int | None = Field(
        None, ge=8, le=2048, description="Side the images are stored at before crop=random cuts image_size squares "
        "from them; null: image_size x 286/256 (the 286 -> 256 of CycleGAN and pix2pix).")

    @model_validator(mode="after")
    def _load_size(self) -> CropSettings:
        size = getattr(self, "image_size", None)
        if self.load_size is not None:
            if self.crop != "random":
                raise ValueError(f"load_size applies only to crop = 'random' (crop is {self.crop!r})")
            if size is not None and self.load_size < size:
                raise ValueError(f"load_size {self.load_size} is smaller than image_size {size}")
        return self

    def stored_size(self, image_size: int) -> int:
        """The side images are decoded (and packed) at."""
        if self.crop != "random":
            return image_size
        return self.load_size or int(round(image_size * 286 / 256))

    def crop_size(self, image_size: int) -> int | None:
        """The side of the random squares cut per batch, or None."""
        return image_size if self.crop == "random" and self.stored_size(image_size) > image_size else None

    def crop_label(self, image_size: int) -> str:
        """How the images were cut, for a pack's metadata."""
        if self.crop == "random":
            return f"centre square resized to {self.stored_size(image_size)}, random {image_size} squares per batch"
        return "centre square" if self.crop == "centre" else "none (square images only)"
