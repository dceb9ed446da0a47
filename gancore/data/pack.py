"""Packs: a dataset decoded once into uint8 images at a fixed size, read back through a memory map.

The file is a safetensors file (so any safetensors reader opens it, and nothing in it can run
code): ``images`` (uint8 ``[N, C, H, W]``), optional ``labels`` (int64 ``[N]``), and for two-domain
data ``images_b`` / ``labels_b``; the string metadata say how it was made (``format``,
``format_version``, ``source``, ``settings``, ``kind``, ``num_classes``, ``count``, ``image_size``,
``channels``, ``crop``, ``resize_filter``, ``gancore``, and ``sha256`` of the array bytes in file
order). Why this format: safetensors puts one JSON header before the raw, contiguous arrays, so a
reader maps ``images`` with ``numpy.memmap`` at its offset and gathers a batch without reading the
rest — memory that does not grow with the dataset — and the layout is a published spec rather than
a format of our own.

:class:`PackWriter` streams arrays into a temporary file (the header is written first, with the
hash's place reserved, and rewritten at the end), then renames it into place: a pack is complete
or absent, never half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gancore.errors import ConfigError
from gancore.files import temporary_path

FORMAT = "gancore.pack"
FORMAT_VERSION = "1"
_DTYPES = {"U8": np.uint8, "I64": np.int64}
_CODES = {np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64"}
_HASH_PLACEHOLDER = "0" * 64
ARRAYS = ("images", "labels", "images_b", "labels_b")


def _header(arrays: dict[str, tuple[np.dtype, tuple[int, ...]]], metadata: dict[str, str]) -> tuple[bytes, dict]:
    offsets: dict[str, tuple[int, int]] = {}
    body: dict[str, Any] = {"__metadata__": metadata}
    position = 0
    for name in ARRAYS:
        if name not in arrays:
            continue
        dtype, shape = arrays[name]
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        offsets[name] = (position, position + size)
        body[name] = {"dtype": _CODES[np.dtype(dtype)], "shape": list(shape),
                      "data_offsets": [position, position + size]}
        position += size
    text = json.dumps(body, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)  # the data start 8-byte aligned (safetensors pads with spaces)
    return struct.pack("<Q", len(text)) + text, offsets


class PackWriter:
    """Writes a pack at ``path`` (atomically): declare the arrays' shapes, write them in pieces in
    file order (``images`` first), then :meth:`close`."""

    def __init__(self, path: Path, arrays: dict[str, tuple[np.dtype, tuple[int, ...]]],
                 metadata: dict[str, str]) -> None:
        self.path = Path(path)
        self.metadata = {**metadata, "format": FORMAT, "format_version": FORMAT_VERSION, "sha256": _HASH_PLACEHOLDER}
        self.arrays = arrays
        header, self.offsets = _header(arrays, self.metadata)
        self.data_start = len(header)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_path(self.path)
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 (closed in close/abort)
        self.fh.write(header)
        self.hash = hashlib.sha256()
        self.written = dict.fromkeys(arrays, 0)
        self.order = [n for n in ARRAYS if n in arrays]

    def write(self, name: str, values: np.ndarray) -> None:
        """Append ``values`` (rows of ``name``) after what was written before."""
        dtype, shape = self.arrays[name]
        values = np.ascontiguousarray(values, dtype=dtype)
        if values.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"pack: {name} rows of shape {values.shape[1:]}, expected {tuple(shape[1:])}")
        index = self.order.index(name)
        if any(self.written[n] < self.arrays[n][1][0] for n in self.order[:index]):
            raise ValueError(f"pack: write {', '.join(self.order[:index])} completely before {name}")
        if self.written[name] + len(values) > shape[0]:
            raise ValueError(f"pack: more than {shape[0]} rows of {name}")
        data = values.tobytes()
        self.fh.write(data)
        self.hash.update(data)
        self.written[name] += len(values)

    def close(self) -> str:
        """Finish the file, rename it into place; returns the content hash."""
        for name in self.order:
            if self.written[name] != self.arrays[name][1][0]:
                self.abort()
                raise ValueError(f"pack: {self.written[name]} of {self.arrays[name][1][0]} rows of {name} written")
        digest = self.hash.hexdigest()
        self.metadata["sha256"] = digest
        header, _ = _header(self.arrays, self.metadata)
        assert len(header) == self.data_start  # the hash took its reserved place
        self.fh.seek(0)
        self.fh.write(header)
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.path)
        return digest

    def abort(self) -> None:
        if not self.fh.closed:
            self.fh.close()
        self.tmp.unlink(missing_ok=True)


@dataclass
class Pack:
    """An opened pack: its metadata and memory-mapped arrays (nothing is read until indexed)."""

    path: Path
    metadata: dict[str, str]
    arrays: dict[str, np.ndarray]

    @property
    def settings(self) -> dict[str, Any]:
        return json.loads(self.metadata.get("settings", "{}"))

    @property
    def num_classes(self) -> int:
        return int(self.metadata.get("num_classes", "0"))

    def verify(self) -> None:
        """Recompute the content hash; a mismatch is a :class:`ConfigError` naming the file."""
        digest = hashlib.sha256()
        for name in ARRAYS:
            if name in self.arrays:
                array = self.arrays[name]
                for start in range(0, len(array), 4096):
                    digest.update(np.ascontiguousarray(array[start:start + 4096]).tobytes())
        if digest.hexdigest() != self.metadata.get("sha256"):
            raise ConfigError(f"{self.path}: the pack's contents do not match its sha256 (damaged or edited)")


def open_pack(path: str | Path) -> Pack:
    """Open a pack for reading; a missing, truncated or foreign file is one :class:`ConfigError` line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.path: {path} is not a file (expected a pack written by `gancore data pack`)")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ConfigError(f"{path}: not a gancore pack (too short for a safetensors header)")
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, 100_000_000):
            raise ConfigError(f"{path}: not a gancore pack (no safetensors header)")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{path}: not a gancore pack (its header is not JSON)") from None
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a gancore pack (a file without gancore's pack metadata)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: pack format version {metadata.get('format_version')!r} is not supported "
                          f"(this gancore reads version {FORMAT_VERSION})")
    start = 8 + length
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAYS:
        entry = header.get(name)
        if entry is None:
            continue
        try:
            dtype, shape = _DTYPES[entry["dtype"]], tuple(int(v) for v in entry["shape"])
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{path}: the pack's entry for {name!r} is malformed") from None
        if min(shape, default=0) < 0 or end - begin != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
            raise ConfigError(f"{path}: the pack's {name!r} does not fit its shape {list(shape)}")
        if start + end > size:
            raise ConfigError(f"{path}: truncated pack ({size} bytes, {name!r} needs {start + end}); pack it again")
        # copy-on-write: torch wants a writable array; nothing ever writes, so no page is copied
        arrays[name] = np.memmap(path, dtype=dtype, mode="c", offset=start + begin, shape=shape)
    if "images" not in arrays:
        raise ConfigError(f"{path}: the pack holds no images")
    metadata = {k: str(v) for k, v in metadata.items()}
    check_pack(path, arrays, metadata)
    return Pack(path=path, metadata=metadata, arrays=arrays)


def check_pack(path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    """The pack's schema, checked on opening (``run``, ``data info``, ``data preview`` alike): images uint8
    ``[N, C, S, S]`` with 1, 3 or 4 channels, labels int64 ``[N]`` within ``num_classes`` (a whole number), the
    ``settings`` entry a JSON object. A ConfigError names the file, the entry and what was expected."""
    for name in ("images", "images_b"):
        if name not in arrays:
            continue
        array = arrays[name]
        shape = list(array.shape)
        if array.dtype != np.uint8 or array.ndim != 4 or shape[1] not in (1, 3, 4) or shape[2] != shape[3] \
                or min(shape) < 1:
            raise ConfigError(f"{path}: the pack's {name!r} is {array.dtype} {shape}; expected uint8 [N, C, S, S] "
                              "with N, S >= 1 and C 1, 3 or 4 (pack the source again)")
    text = metadata.get("num_classes", "0")
    from gancore.limits import MAX_CLASSES

    if not (text.isascii() and text.isdigit() and len(text) <= 7 and int(text) <= MAX_CLASSES):
        raise ConfigError(f"{path}: pack metadata num_classes {text[:40]!r} is not a whole number of classes "
                          f"within 0..{MAX_CLASSES}")
    num_classes = int(text)
    for name, images in (("labels", "images"), ("labels_b", "images_b")):
        if name not in arrays:
            continue
        labels = arrays[name]
        if labels.dtype != np.int64 or labels.ndim != 1 or images not in arrays \
                or len(labels) != len(arrays[images]):
            raise ConfigError(f"{path}: the pack's {name!r} is {labels.dtype} {list(labels.shape)}; expected int64 "
                              f"[{len(arrays[images]) if images in arrays else 'N'}], one label per image")
        low, high = (int(labels.min()), int(labels.max())) if len(labels) else (0, -1)
        if low < 0 or high >= num_classes:
            raise ConfigError(f"{path}: the pack's {name!r} run from {low} to {high}, outside 0..{num_classes - 1} "
                              f"(its num_classes is {num_classes})")
    try:
        settings = json.loads(metadata.get("settings", "{}"))
    except (json.JSONDecodeError, RecursionError):
        settings = None
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: pack metadata 'settings' is not a JSON object")
