"""MNIST, Fashion-MNIST and CIFAR-10 read from the files their downloads unpack to (never downloaded).

- ``mnist``, ``fashion-mnist``: the IDX files (``train-images-idx3-ubyte`` and ``-labels-idx1-ubyte``,
  ``t10k-...`` for the test split), gzipped or not, in ``data.path`` or in torchvision's
  ``data.path/MNIST/raw`` (``FashionMNIST/raw``).
- ``cifar10``: the binary batches (``cifar-10-batches-bin/data_batch_{1..5}.bin``, ``test_batch.bin``),
  or the python batches (``cifar-10-batches-py``), read as data by :mod:`gancore.data.cifar_batch`
  (no unpickler: a file naming anything but numpy's array reconstruction is refused, nothing runs).

Images are resized to ``image_size`` (bilinear with antialiasing; 28 -> 32 for MNIST by default),
scaled to [-1, 1], with their labels.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from gancore.data import DataSource, ImageSettings, TensorData
from gancore.errors import ConfigError
from gancore.lazy import lazy_module

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


class IDXSettings(ImageSettings):
    path: str = Field(..., description="The folder holding the IDX files (or torchvision's root above MNIST/raw).")
    split: Literal["train", "test"] = Field("train", description="train (60,000 images) or test (10,000).")


def _resized(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 ``[N, C, h, w]`` to float ``[N, C, size, size]`` in [-1, 1]."""
    x = TensorData.decoded(torch.from_numpy(np.array(images, dtype=np.uint8)))  # a writable copy
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(-1.0, 1.0)


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (uint8 data), gzipped or not; a damaged file is one error naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ConfigError(f"data.path: cannot read {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ConfigError(f"data.path: {path} is not an IDX file of unsigned bytes")
    dims = raw[3]
    if len(raw) < 4 + 4 * dims:
        raise ConfigError(f"data.path: {path} is truncated (its header)")
    shape = struct.unpack(f">{dims}I", raw[4:4 + 4 * dims])
    need = 4 + 4 * dims + int(np.prod(shape))
    if len(raw) != need:
        raise ConfigError(f"data.path: {path} holds {len(raw)} bytes, its header says {need} (truncated?)")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class IDXDigits(DataSource):
    """The IDX files of MNIST-style datasets."""

    Config = IDXSettings
    raw_folder: ClassVar[str]
    url: ClassVar[str]

    def _find(self, stem: str) -> Path:
        root = Path(self.config.path).expanduser()
        for folder in (root, root / self.raw_folder / "raw", root / "raw"):
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    return folder / name
        raise ConfigError(f"data.path: no {stem}[.gz] in {root} (nor in {root / self.raw_folder / 'raw'}); "
                          f"{self.name} is not downloaded by gancore: get the four IDX files from {self.url}")

    def load(self) -> TensorData:
        prefix = "train" if self.config.split == "train" else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or min(images.shape) < 1:
            raise ConfigError(f"data.path: the {prefix} images {list(images.shape)} and labels {list(labels.shape)} "
                              "of " + self.config.path + " do not match (expected N images of H x W >= 1 and N labels)")
        x = _resized(images[:, None], self.config.image_size)
        return TensorData(x=x, y=torch.from_numpy(labels.astype(np.int64)), num_classes=10)


class MNIST(IDXDigits):
    """MNIST (LeCun et al. 1998): 70,000 handwritten digits, 28x28, from its IDX files."""

    name = "mnist"
    raw_folder = "MNIST"
    url = "http://yann.lecun.com/exdb/mnist/ (or any mirror)"


class FashionMNIST(IDXDigits):
    """Fashion-MNIST (Xiao et al. 2017): 70,000 28x28 images of 10 kinds of clothing, from its IDX files."""

    name = "fashion-mnist"
    raw_folder = "FashionMNIST"
    url = "https://github.com/zalandoresearch/fashion-mnist"


def load_cifar_python(path: Path) -> dict:
    """One CIFAR python batch, read by :func:`gancore.data.cifar_batch.read_batch`."""
    from gancore.data.cifar_batch import RefusedBatch, read_batch

    try:
        data = read_batch(path.read_bytes())
    except (RefusedBatch, ValueError, TypeError, KeyError, IndexError, OSError, AttributeError, MemoryError,
            OverflowError, RecursionError, EOFError) as exc:
        raise ConfigError(f"data.path: {path} is not a CIFAR python batch (refused: {exc})") from None
    if not isinstance(data, dict) or b"data" not in data or b"labels" not in data:
        raise ConfigError(f"data.path: {path} is not a CIFAR python batch (no data and labels)")
    return data


def _cifar_rows(path: Path, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """A python batch's images ``[N, 3, 32, 32]`` and labels ``[N]``: pixels whole numbers within 0..255, labels
    whole numbers, one per row (anything else, of any type, is one line naming the file)."""
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    except (ValueError, TypeError, OverflowError, MemoryError, RecursionError):
        data = labels = np.zeros(0, dtype=object)
    pixels = data.dtype.kind in "iu" and data.ndim == 2 and data.shape[1] == 3072 and len(data) > 0 and (
        data.dtype == np.uint8 or (int(data.min()) >= 0 and int(data.max()) <= 255))
    if not pixels or labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise ConfigError(f"data.path: {path}: data and labels are not CIFAR's rows (expected N rows of 3,072 "
                          "pixels within 0..255 and N whole-number labels)")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


class CIFARSettings(ImageSettings):
    path: str = Field(..., description="cifar-10-batches-bin (or -py), or the folder holding it.")
    split: Literal["train", "test"] = Field("train", description="train (50,000 images) or test (10,000).")


class CIFAR10(DataSource):
    """CIFAR-10 (Krizhevsky 2009): 60,000 32x32 colour images of 10 classes, from its batches."""

    name = "cifar10"
    Config = CIFARSettings

    def _folder(self) -> tuple[Path, str]:
        root = Path(self.config.path).expanduser()
        for folder, kind in ((root, "bin"), (root / "cifar-10-batches-bin", "bin"), (root, "py"),
                             (root / "cifar-10-batches-py", "py")):
            probe = "data_batch_1.bin" if kind == "bin" else "data_batch_1"
            if (folder / probe).is_file():
                return folder, kind
        raise ConfigError(f"data.path: no CIFAR-10 batches in {root} (expected cifar-10-batches-bin/ or "
                          "cifar-10-batches-py/); gancore does not download it: get the binary version from "
                          "https://www.cs.toronto.edu/~kriz/cifar.html")

    def load(self) -> TensorData:
        folder, kind = self._folder()
        names = [f"data_batch_{i}" for i in range(1, 6)] if self.config.split == "train" else ["test_batch"]
        images, labels = [], []
        for name in names:
            path = folder / (name + ".bin" if kind == "bin" else name)
            if not path.is_file():
                raise ConfigError(f"data.path: {folder} lacks {path.name} (an incomplete download?)")
            if kind == "bin":
                raw = np.fromfile(path, dtype=np.uint8)
                if raw.size % 3073 or not raw.size:
                    raise ConfigError(f"data.path: {path} is not whole 3,073-byte CIFAR records (truncated?)")
                records = raw.reshape(-1, 3073)
                labels.append(records[:, 0].astype(np.int64))
                images.append(records[:, 1:].reshape(-1, 3, 32, 32))
            else:
                data, rows = _cifar_rows(path, load_cifar_python(path))
                images.append(data)
                labels.append(rows)
        y = np.concatenate(labels)
        if y.min() < 0 or y.max() > 9:
            raise ConfigError(f"data.path: labels outside 0-9 in {folder}")
        return TensorData(x=_resized(np.concatenate(images), self.config.image_size), y=torch.from_numpy(y),
                          num_classes=10)
