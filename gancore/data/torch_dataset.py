"""Users' own data: a map-style ``torch.utils.data.Dataset``, a tensor or an array.

From Python, ``gancore.train(..., data=obj)`` hands the object over for this process
(:func:`provide`); from the CLI, and for every process of ``--nproc`` and every resume,
``data.factory=package.module:function`` names a callable that returns one (with ``data.kwargs``).
Items may be an image (a ``[C, H, W]`` tensor or array, float in [-1, 1] or uint8 in [0, 255], or a
PIL image), a vector (``[D]``), or ``(item, label)`` with an integer label. The items are converted once
into one ``TensorData`` (uint8 pixels stay uint8 and are decoded per batch), so the batch order comes
from the kernel's checkpointed sampler like every other source's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from pydantic import Field

from gancore.data import DataSource, TensorData
from gancore.errors import ConfigError
from gancore.interfaces import Settings
from gancore.lazy import lazy_module

torch = lazy_module("torch")
np = lazy_module("numpy")

_provided: list[Any] = []
"""The object handed to :func:`gancore.train` in this process (at most one)."""


def provide(obj: Any) -> None:
    """Make ``obj`` the dataset of a ``torch-dataset`` source without a factory, in this process."""
    _provided[:] = [obj]


def forget() -> None:
    _provided.clear()


class TorchDatasetSettings(Settings):
    factory: str | None = Field(
        None, description="package.module:function returning the dataset (called with data.kwargs); "
        "null: the object handed to gancore.train(data=...) in this process.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the factory.")
    num_classes: int | None = Field(
        None, ge=1, le=100_000, description="Classes of the labels; null: the largest label + 1.")
    flip: bool = Field(False, description="Flip images horizontally at random when batches are drawn.")
    workers: int = Field(0, ge=0, le=256, description="Processes that read the items once, before training "
                         "(items that decode files or PIL images); 0: this process.")


def _factory(spec: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"data.factory: {spec!r} is not package.module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any error it raises on import is theirs to see, in one line
        raise ConfigError(f"data.factory: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"data.factory: {module_name!r} has no callable {attr!r}")
    return fn


def _as_tensor(value: Any, index: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if hasattr(value, "mode") and hasattr(value, "size") and hasattr(value, "convert"):  # a PIL image
        arr = np.asarray(value.convert("L" if value.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())
    raise ConfigError(f"data: item {index} is a {type(value).__name__}; expected a tensor, an array or a PIL image "
                      "(or a tuple (image, label))")


def _split(item: Any, index: int) -> tuple[Any, int | None]:
    if isinstance(item, (tuple, list)):
        if len(item) != 2:
            raise ConfigError(f"data: item {index} is a {type(item).__name__} of {len(item)}; expected an image "
                              "or (image, label)")
        x, label = item
        try:
            value = label.item() if hasattr(label, "item") else label
        except (TypeError, ValueError, RuntimeError):  # a tensor of several values
            value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
            raise ConfigError(f"data: item {index}: the label {label!r} is not a class index (0, 1, 2, ...)")
        return _as_tensor(x, index), int(value)
    return _as_tensor(item, index), None


class _Items:
    """``(tensor, label)`` of each item of a dataset: what the reading processes return."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int | None, str]:
        try:
            item = self.dataset[i]
        except Exception as exc:  # the user's __getitem__ failed on this item: one line naming it
            text = str(exc).strip().splitlines()
            return None, None, f"data: item {i}: reading it raised {type(exc).__name__}: {text[0] if text else ''}"
        try:
            x, label = _split(item, i)
        except ConfigError as exc:  # raised in the parent, as one line
            return None, None, str(exc)
        return x, label, ""


def _read(dataset: Any, workers: int) -> Any:
    """Every item of ``dataset`` converted, in order: in this process, or in ``workers`` processes (a
    torch DataLoader; a dataset whose items decode files or PIL images reads in parallel)."""
    items = _Items(dataset)
    if workers <= 0:
        return (items[i] for i in range(len(items)))
    loader = torch.utils.data.DataLoader(items, batch_size=None, shuffle=False, num_workers=workers,
                                         collate_fn=_identity, prefetch_factor=8)
    return iter(loader)


def _identity(item: Any) -> Any:
    return item


def to_tensor_data(obj: Any, *, num_classes: int | None = None, flip: bool = False, workers: int = 0) -> TensorData:
    """A dataset, a tensor or an array as :class:`TensorData`; one line naming the item when one is wrong."""
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        x = _as_tensor(obj, 0)
        if x.dim() not in (2, 4):
            raise ConfigError(f"data: a tensor of shape {list(x.shape)}; expected [N, C, H, W] images "
                              "or [N, D] vectors")
        items: Any = x
        labels: list[int | None] = [None] * len(x)
        rows = list(x)
    else:
        if not (hasattr(obj, "__getitem__") and hasattr(obj, "__len__")):
            raise ConfigError(f"data: a {type(obj).__name__} is not a map-style dataset (it needs __len__ and "
                              "__getitem__), a tensor or an array")
        rows, labels = [], []
        for x, label, error in _read(obj, workers):
            if error:
                raise ConfigError(error)
            rows.append(x)
            labels.append(label)
        items = rows
    if not rows:
        raise ConfigError("data: the dataset is empty (length 0)")
    first = rows[0]
    for i, x in enumerate(rows):
        if x.dim() not in (1, 3):
            raise ConfigError(f"data: item {i} has shape {list(x.shape)}; expected an image [C, H, W] or a vector [D]")
        if x.shape != first.shape:
            raise ConfigError(f"data: item {i} has shape {list(x.shape)}, item 0 {list(first.shape)}: every item "
                              "must have the same shape")
        if x.dtype != first.dtype:
            raise ConfigError(f"data: item {i} is {x.dtype}, item 0 {first.dtype}: every item must have one dtype")
        if x.dim() == 3 and (x.shape[0] not in (1, 3) or x.shape[1] != x.shape[2]):
            raise ConfigError(f"data: item {i} has shape {list(x.shape)}; images must be [C, H, W] with 1 or 3 "
                              "channels and square (H == W)")
    x = torch.stack(rows) if isinstance(items, list) else items
    if x.dtype == torch.uint8 and x.dim() != 4:
        raise ConfigError("data: uint8 items must be images [C, H, W]")
    if x.dtype != torch.uint8:
        if not x.dtype.is_floating_point:
            raise ConfigError(f"data: items of dtype {x.dtype}; expected float (images in [-1, 1]) or uint8 pixels")
        x = x.float().contiguous()
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0])
            raise ConfigError(f"data: item {bad} holds NaN or infinite values")
        if x.dim() == 4 and (float(x.min()) < -1.0 - 1e-6 or float(x.max()) > 1.0 + 1e-6):
            bad = int(((x < -1.0 - 1e-6) | (x > 1.0 + 1e-6)).flatten(1).any(1).nonzero()[0])
            raise ConfigError(f"data: item {bad} has values outside [-1, 1]; float images must be scaled to [-1, 1] "
                              "(or give uint8 pixels)")
    y = None
    known = [label for label in labels if label is not None]
    if known:
        if len(known) != len(labels):
            missing = labels.index(None)
            raise ConfigError(f"data: item {missing} has no label while others have one")
        y = torch.tensor(known, dtype=torch.int64)
        classes = num_classes or int(y.max()) + 1
        if int(y.max()) >= classes:
            bad = int((y >= classes).nonzero()[0])
            raise ConfigError(f"data: item {bad} has label {int(y[bad])}, beyond data.num_classes = {classes}")
    else:
        classes = 0
    return TensorData(x=x.contiguous(), y=y, num_classes=classes, flip=flip and x.dim() == 4)


class TorchDataset(DataSource):
    """A map-style torch ``Dataset`` (or a tensor, or an array) of the user's, from a factory or from Python."""

    name = "torch-dataset"
    Config = TorchDatasetSettings

    def load(self) -> TensorData:
        c = self.config
        if c.factory is not None:
            try:
                obj = _factory(c.factory)(**c.kwargs)
            except ConfigError:
                raise
            except Exception as exc:  # the user's function failed: one line, naming it
                raise ConfigError(f"data.factory: {c.factory}() raised {type(exc).__name__}: {exc}") from None
            if obj is None:
                raise ConfigError(f"data.factory: {c.factory}() returned None; expected a dataset, a tensor "
                                  "or an array")
        elif _provided:
            obj = _provided[0]
        else:
            raise ConfigError("data.factory: this run's data was a Python object handed to gancore.train(data=...), "
                              "which this process does not have: pass it again as data= (gancore.train(..., "
                              "resume=True), Model.evaluate) or set data.factory=package.module:function")
        return to_tensor_data(obj, num_classes=c.num_classes, flip=c.flip, workers=c.workers)


class HFDatasetSettings(Settings):
    path: str = Field(..., description="A folder written by datasets' save_to_disk, or a folder of .parquet or "
                      ".arrow files (local only: nothing is downloaded).")
    image_column: str = Field("image", description="The column of the images (or vectors).")
    label_column: str | None = Field(None, description="The column of integer class labels; null: no labels.")
    split: str = Field("train", description="The split of a DatasetDict folder (ignored for a single dataset).")
    num_classes: int | None = Field(
        None, ge=1, le=100_000, description="Classes of the labels; null: from the column's ClassLabel, or the "
        "largest label + 1.")
    flip: bool = Field(False, description="Flip images horizontally at random when batches are drawn.")
    workers: int = Field(0, ge=0, le=256, description="Processes that decode the rows once, before training; "
                         "0: this process.")


class _Columns:
    """Rows of a Hugging Face dataset as ``image`` or ``(image, label)`` items."""

    def __init__(self, ds: Any, image: str, label: str | None) -> None:
        self.ds, self.image, self.label = ds.with_format(None), image, label

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> Any:
        row = self.ds[i]
        x = row[self.image]
        if isinstance(x, list):
            x = np.asarray(x, dtype=np.float32)
        return x if self.label is None else (x, row[self.label])


class HFDataset(DataSource):
    """A local Hugging Face ``datasets`` folder (``save_to_disk``, or parquet/arrow files), read with ``datasets``."""

    name = "hf-dataset"
    Config = HFDatasetSettings

    def load(self) -> TensorData:
        from pathlib import Path

        c = self.config
        try:
            import datasets
        except ImportError:
            raise ConfigError("data.name: hf-dataset needs the Hugging Face datasets library: "
                              "pip install datasets") from None
        folder = Path(c.path).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"data.path: {folder} is not a folder")
        ds = self._open(datasets, folder)
        columns = list(ds.column_names)
        for key, column in (("data.image_column", c.image_column), ("data.label_column", c.label_column)):
            if column is not None and column not in columns:
                raise ConfigError(f"{key}: {folder} has no column {column!r} (its columns: {', '.join(columns)})")
        classes = c.num_classes
        if classes is None and c.label_column is not None:
            feature = ds.features.get(c.label_column)
            classes = getattr(feature, "num_classes", None)
        return to_tensor_data(_Columns(ds, c.image_column, c.label_column), num_classes=classes, flip=c.flip,
                              workers=c.workers)

    def _open(self, datasets: Any, folder: Any) -> Any:
        c = self.config
        if (folder / "dataset_dict.json").is_file() or (folder / "dataset_info.json").is_file() \
                or (folder / "state.json").is_file():
            try:
                ds = datasets.load_from_disk(str(folder))
            except Exception as exc:  # a damaged folder: datasets' own error, in one line
                raise ConfigError(f"data.path: {folder} is not a readable datasets folder ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
            if isinstance(ds, datasets.DatasetDict):
                if c.split not in ds:
                    raise ConfigError(f"data.split: {folder} has no split {c.split!r} (its splits: {', '.join(ds)})")
                ds = ds[c.split]
            return ds
        parquet = sorted(folder.glob("*.parquet"))
        arrow = sorted(folder.glob("*.arrow"))
        try:
            if parquet:
                return datasets.Dataset.from_parquet([str(p) for p in parquet])
            if arrow:
                return datasets.concatenate_datasets([datasets.Dataset.from_file(str(p)) for p in arrow])
        except Exception as exc:  # a damaged file
            raise ConfigError(f"data.path: {folder}: cannot read its files ({type(exc).__name__}: {exc})") from None
        raise ConfigError(f"data.path: {folder} holds no datasets folder (save_to_disk) and no .parquet or "
                          ".arrow files")
