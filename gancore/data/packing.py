"""``gancore data pack``: decode a data source once into a pack (see :mod:`gancore.data.pack`).

A file-backed source (one with ``decode_plan()``, such as ``image-folder``) is decoded file by file
in worker processes into a temporary memory-mapped array, so memory stays flat whatever the
dataset's size, then written into the pack (without the files that failed, with ``skip_bad``).
Other image sources are loaded once (``load()``) and quantised to uint8.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gancore.data import DataSource, DecodePlan
from gancore.data.pack import PackWriter
from gancore.errors import ConfigError, GancoreError
from gancore.lazy import lazy_module

torch = lazy_module("torch")

CHUNK = 256


@dataclass
class PackResult:
    path: Path
    count: int
    sha256: str
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the source left out (ignored folders; see ``TensorData.notes``)."""


def _decode_one(args: tuple[Callable[[Path], Any], Path]) -> tuple[np.ndarray | None, str]:
    decode, path = args
    try:
        return np.asarray(decode(path), dtype=np.uint8), ""
    except GancoreError as exc:
        return None, str(exc)
    except Exception as exc:  # a decoder's bug on one file is that file's error, not the pool's
        return None, f"cannot read image {path}: {type(exc).__name__}: {exc}"


def _decoded(plan: DecodePlan, workers: int) -> Iterator[tuple[np.ndarray | None, str]]:
    jobs = [(plan.decode, f) for f in plan.files]
    if workers <= 1:
        yield from map(_decode_one, jobs)
        return
    # spawn: the pool's workers start clean, whatever threads the parent's libraries run
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_decode_one, jobs, chunksize=16)


def _metadata(source: DataSource, **extra: Any) -> dict[str, str]:
    from gancore import __version__

    settings = source.config.model_dump(mode="json")
    return {"source": source.name, "settings": json.dumps(settings), "gancore": __version__,
            **{k: str(v) for k, v in extra.items()}}


def pack_source(source: DataSource, out: Path, *, workers: int = 1, skip_bad: bool = False,
                progress: bool = True) -> PackResult:
    """Decode ``source`` into the pack ``out`` (written atomically)."""
    plan = source.decode_plan() if hasattr(source, "decode_plan") else None
    if plan is not None:
        skip_bad = skip_bad or bool(getattr(source.config, "skip_bad", False))
        return _pack_files(source, plan, Path(out), workers=workers, skip_bad=skip_bad, progress=progress)
    return _pack_loaded(source, Path(out))


def _pack_files(source: DataSource, plan: DecodePlan, out: Path, *, workers: int, skip_bad: bool,
                progress: bool) -> PackResult:
    from tqdm import tqdm

    n = len(plan.files)
    shape = tuple(plan.shape)
    good = np.zeros(n, dtype=bool)
    skipped: list[tuple[Path, str]] = []
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None, prefix=".pack-") as tmp:
        scratch = np.lib.format.open_memmap(Path(tmp) / "images.npy", mode="w+", dtype=np.uint8, shape=(n, *shape))
        bar = tqdm(total=n, unit="img", desc=f"pack {source.name}", disable=not progress, dynamic_ncols=True)
        for i, (image, error) in enumerate(_decoded(plan, workers)):
            bar.update(1)
            if image is not None and image.shape != shape:
                image, error = None, f"data.path: {plan.files[i]} decoded to {list(image.shape)}, not {list(shape)}"
            if image is None:
                if not skip_bad:
                    bar.close()
                    raise ConfigError(f"{error} (pack --skip-bad packs the other images)")
                skipped.append((plan.files[i], error))
                continue
            scratch[i] = image
            good[i] = True
        bar.close()
        count = int(good.sum())
        if count == 0:
            raise ConfigError(f"pack: none of the {n} images of {source.name} could be read")
        arrays = {"images": (np.uint8, (count, *shape))}
        labels = np.asarray(plan.labels, dtype=np.int64)[good] if plan.labels is not None else None
        if labels is not None:
            arrays["labels"] = (np.int64, (count,))
        writer = PackWriter(out, arrays, _metadata(source, kind="image", num_classes=plan.num_classes, count=count,
                                                   image_size=shape[-1], channels=shape[0], crop=plan.crop,
                                                   resize_filter=plan.resize_filter, skipped=len(skipped),
                                                   crop_size=plan.crop_size or 0))
        try:
            index = np.flatnonzero(good)
            for start in range(0, count, CHUNK):
                writer.write("images", scratch[index[start:start + CHUNK]])
            if labels is not None:
                writer.write("labels", labels)
            digest = writer.close()
        except BaseException:
            writer.abort()
            raise
        del scratch
    return PackResult(out, count, digest, skipped, list(plan.notes))


def _quantised(x: Any) -> np.ndarray:
    """Images in [-1, 1] as uint8 pixels; pixels already uint8 (a torch dataset's) as they are."""
    if x.dtype == torch.uint8:
        return np.ascontiguousarray(x.numpy())
    return np.clip(np.rint((x.float().numpy() + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _pack_loaded(source: DataSource, out: Path) -> PackResult:
    data = source.load()
    data.check(f"data.path: {source.config.path}" if getattr(source.config, "path", None) else f"pack: {source.name}")
    if data.kind != "image":
        raise ConfigError(f"pack: {source.name} gives vector data, which is drawn, not decoded: train on it directly")
    arrays: dict[str, tuple[Any, tuple[int, ...]]] = {"images": (np.uint8, tuple(data.x.shape))}
    if data.y is not None:
        arrays["labels"] = (np.int64, (len(data.y),))
    if data.x_b is not None:
        arrays["images_b"] = (np.uint8, tuple(data.x_b.shape))
        if data.y_b is not None:
            arrays["labels_b"] = (np.int64, (len(data.y_b),))
    shape = tuple(data.x.shape[1:])
    writer = PackWriter(out, arrays, _metadata(source, kind="image", num_classes=data.num_classes, count=len(data),
                                               image_size=shape[-1], channels=shape[0], crop="the source's",
                                               resize_filter="the source's (then quantised to uint8)",
                                               flip=data.flip, paired=data.paired, crop_size=data.crop_size or 0))
    try:
        writer.write("images", _quantised(data.x))
        if data.y is not None:
            writer.write("labels", data.y.numpy())
        if data.x_b is not None:
            writer.write("images_b", _quantised(data.x_b))
            if data.y_b is not None:
                writer.write("labels_b", data.y_b.numpy())
        digest = writer.close()
    except BaseException:
        writer.abort()
        raise
    return PackResult(out, len(data), digest)


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 1)))
