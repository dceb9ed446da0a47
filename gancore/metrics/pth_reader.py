"""A PyTorch ``.pth`` state dict read as data: tensors out of ``torch.save``'s formats with no unpickling.

``torch.load`` unpickles (even ``weights_only=True`` runs torch's own unpickler over the file). This
reader runs nothing from the file: :func:`gancore.pickle_bytes.read_pickle` walks the pickle's opcodes,
and the only things it builds are dicts of names to tensors made from ``torch._utils._rebuild_tensor_v2``
calls over storages of a plain dtype. Both of ``torch.save``'s layouts are read:

- the zip archive (torch >= 1.6): ``<name>/data.pkl`` with persistent ids ``('storage', <dtype>Storage,
  key, location, numel)``, each storage's raw bytes in ``<name>/data/<key>``;
- the legacy stream (torch < 1.6, as the published FID Inception weights are): a magic number, the
  protocol version 1001, a system-info dict, the object's pickle, the pickle of the storage keys, then
  for each key an int64 element count and the storage's bytes.

Anything else (another global, a view of a storage, a tensor reaching past its storage, a big-endian
file) raises :class:`~gancore.pickle_bytes.RefusedPickle`.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancore.pickle_bytes import RefusedPickle, read_pickle

#: ``torch.<Name>Storage`` a file may name, and its element type.
STORAGES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
            "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
            "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
            "BoolStorage": torch.bool}
ALLOWED = {("collections", "OrderedDict"): "dict", ("torch._utils", "_rebuild_tensor_v2"): "tensor",
           **{("torch", name): name for name in STORAGES}}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: torch.dtype
    numel: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                               for v in value):
        raise RefusedPickle(f"a tensor's {what} is not a tuple of non-negative ints")
    return value


def _reduce(kind: str, args: tuple) -> Any:
    if kind == "dict" and args == ():
        return {}
    if kind == "tensor" and len(args) in (6, 7):
        storage, offset, size, stride = args[:4]
        if not isinstance(storage, _Storage) or not isinstance(offset, int) or offset < 0:
            raise RefusedPickle("a tensor without a storage of its own")
        size, stride = _ints(size, "size"), _ints(stride, "stride")
        if len(size) != len(stride):
            raise RefusedPickle("a tensor whose size and stride differ in length")
        if all(size) and offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) >= storage.numel:
            raise RefusedPickle(f"a tensor reaching past its storage {storage.key!r}")
        return _Tensor(storage, offset, size, stride)
    raise RefusedPickle(f"an unexpected call of {kind}")


def _build(obj: Any, state: Any) -> Any:
    if isinstance(obj, dict) and isinstance(state, dict):
        return obj  # an OrderedDict's attributes (a state dict's _metadata: module versions)
    raise RefusedPickle("state for something that takes none")


def _persistent(pid: Any) -> _Storage:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
        raise RefusedPickle("a persistent id that is not a storage")
    kind, key, numel = pid[1], pid[2], pid[4]
    if not (isinstance(kind, tuple) and kind[:1] == ("global",) and kind[1] in STORAGES):
        raise RefusedPickle("a storage of an unexpected type")
    if len(pid) == 6 and pid[5] is not None:
        raise RefusedPickle("a view of a storage")
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise RefusedPickle("a storage with an unexpected key or size")
    return _Storage(key, STORAGES[kind[1]], numel)


def _read(raw: bytes, start: int = 0) -> tuple[Any, int]:
    return read_pickle(raw, allowed=ALLOWED, reduce=_reduce, build=_build, persistent=_persistent, start=start)


def _tensors(obj: Any, storage_bytes: dict[str, bytes]) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, _Tensor) for k, v in obj.items()):
        raise RefusedPickle("not a dict of names to tensors")
    out = {}
    for name, t in obj.items():
        data = storage_bytes.get(t.storage.key)
        item = torch.empty((), dtype=t.storage.dtype).element_size()
        if data is None or len(data) != t.storage.numel * item:
            raise RefusedPickle(f"storage {t.storage.key!r} of {name} is missing or of the wrong size")
        flat = torch.frombuffer(bytearray(data), dtype=t.storage.dtype) if data else \
            torch.empty(0, dtype=t.storage.dtype)
        out[name] = torch.as_strided(flat, t.size, t.stride, t.offset).clone()
    return out


def _from_zip(path: Path) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(path) as z:
        pickles = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise RefusedPickle("a zip without one <name>/data.pkl")
        prefix = pickles[0].removesuffix("data.pkl")
        names = set(z.namelist())
        if prefix + "byteorder" in names and z.read(prefix + "byteorder").strip() != b"little":
            raise RefusedPickle("a big-endian file")
        obj, _ = _read(z.read(pickles[0]))
        keys = {t.storage.key for t in obj.values() if isinstance(t, _Tensor)} if isinstance(obj, dict) else set()
        data = {}
        for key in keys:
            if not isinstance(key, str) or prefix + "data/" + key not in names:
                raise RefusedPickle(f"storage {key!r} is not in the archive")
            data[key] = z.read(prefix + "data/" + key)
    return _tensors(obj, data)


def _from_legacy(raw: bytes) -> dict[str, torch.Tensor]:
    magic, pos = read_pickle(raw, allowed={}, reduce=_reduce, build=_build)
    if magic != LEGACY_MAGIC:
        raise RefusedPickle("neither a zip archive nor torch's legacy format (no magic number)")
    version, pos = read_pickle(raw, allowed={}, reduce=_reduce, build=_build, start=pos)
    info, pos = read_pickle(raw, allowed={}, reduce=_reduce, build=_build, start=pos)
    if version != LEGACY_PROTOCOL or not isinstance(info, dict):
        raise RefusedPickle(f"legacy protocol {version!r}, expected {LEGACY_PROTOCOL}")
    if info.get("little_endian") is not True:
        raise RefusedPickle("a big-endian file")
    obj, pos = _read(raw, pos)
    keys, pos = read_pickle(raw, allowed={}, reduce=_reduce, build=_build, start=pos)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise RefusedPickle("the storage keys are not a list of strings")
    storages = {t.storage.key: t.storage for t in obj.values() if isinstance(t, _Tensor)} \
        if isinstance(obj, dict) else {}
    data = {}
    for key in keys:
        if key not in storages:
            raise RefusedPickle(f"storage {key!r} belongs to no tensor")
        if pos + 8 > len(raw):
            raise RefusedPickle("truncated")
        (count,) = struct.unpack("<q", raw[pos:pos + 8])
        nbytes = count * torch.empty((), dtype=storages[key].dtype).element_size()
        if count != storages[key].numel or pos + 8 + nbytes > len(raw):
            raise RefusedPickle(f"storage {key!r}: {count} elements where {storages[key].numel} were declared, "
                                "or truncated")
        data[key] = raw[pos + 8:pos + 8 + nbytes]
        pos += 8 + nbytes
    return _tensors(obj, data)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``torch.save``'d state dict (zip or legacy layout), read without unpickling.

    Raises :class:`~gancore.pickle_bytes.RefusedPickle` (a ``ValueError``) for anything else; OS errors
    pass through.
    """
    path = Path(path)
    try:
        return _from_zip(path) if zipfile.is_zipfile(path) else _from_legacy(path.read_bytes())
    except RefusedPickle:
        raise
    except OSError:
        raise
    except (zipfile.BadZipFile, KeyError, IndexError, TypeError, AttributeError, ValueError, struct.error,
            RuntimeError, OverflowError, MemoryError, EOFError, NotImplementedError) as exc:
        raise RefusedPickle(f"a damaged or malformed file ({type(exc).__name__})") from None
