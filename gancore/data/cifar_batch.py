"""CIFAR's python batches read as data, by :func:`gancore.pickle_bytes.read_pickle` (not an unpickler).

``cifar-10-batches-py`` holds pickled dicts (``data``: a uint8 numpy array, ``labels``: a list of ints,
...). Python's unpickler would run whatever callables a file names; this reader runs none. It
builds dicts, lists, tuples, numbers and strings itself, and understands
exactly one reconstruction, numpy's (``numpy.core.multiarray._reconstruct`` of an ``ndarray`` with a
``dtype``, then its state), which it turns into ``numpy.frombuffer``. Any other global, or any opcode
outside that set, is refused before anything is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gancore.pickle_bytes import Call, RefusedPickle, read_pickle

#: The globals a CIFAR batch names, and what the reader makes of each.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",  # how protocol-2 files written by Python 3 carry bytes
}


#: The one error this reader raises for a file it does not admit.
RefusedBatch = RefusedPickle


def _reduce(kind: str, args: tuple) -> Any:
    if kind == "encode":
        text, encoding = (args + ("utf-8",))[:2]
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise RefusedBatch("an unexpected _codecs.encode")
        return text.encode("latin1")
    if kind == "dtype":
        return np.dtype(args[0] if isinstance(args[0], str) else bytes(args[0]).decode())
    if kind == "reconstruct":
        return Call("array", args)
    raise RefusedBatch(f"{kind} cannot be called")


def _build(obj: Any, state: Any) -> Any:
    if isinstance(obj, np.dtype):
        return obj  # byte order and flags: uint8 has none that matter
    if isinstance(obj, Call) and obj.kind == "array":
        _, shape, dtype, fortran, raw = state[:5]
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise RefusedBatch("an array whose dtype holds objects")
        raw = raw.encode("latin1") if isinstance(raw, str) else bytes(raw)
        array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return array.copy()
    raise RefusedBatch("state for something that takes none")


def read_batch(raw: bytes) -> Any:
    """The object a CIFAR batch's bytes describe, built without running anything from the file."""
    obj, _ = read_pickle(raw, allowed=ALLOWED, reduce=_reduce, build=_build)
    return obj
