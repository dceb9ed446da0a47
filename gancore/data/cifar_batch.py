"""CIFAR's python batches read as data: a reader of the pickle byte format, not an unpickler.

``cifar-10-batches-py`` holds pickled dicts (``data``: a uint8 numpy array, ``labels``: a list of ints,
...). Python's unpickler would run whatever callables a file names; this reader runs none. It walks
the opcodes a batch uses, builds dicts, lists, tuples, numbers and strings itself, and understands
exactly one reconstruction, numpy's (``numpy.core.multiarray._reconstruct`` of an ``ndarray`` with a
``dtype``, then its state), which it turns into ``numpy.frombuffer``. Any other global, or any opcode
outside that set, is refused before anything is built.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The globals a CIFAR batch names, and what the reader makes of each.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",  # how protocol-2 files written by Python 3 carry bytes
}


class RefusedBatch(ValueError):
    """The file is not a CIFAR batch this reader admits."""


@dataclass
class _Call:
    """A call the file asks for, kept as data until BUILD gives it its state."""

    kind: str
    args: tuple
    state: Any = None
    result: Any = field(default=None)


def _reduce(kind: str, args: tuple) -> Any:
    if kind == "encode":
        text, encoding = (args + ("utf-8",))[:2]
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise RefusedBatch("an unexpected _codecs.encode")
        return text.encode("latin1")
    if kind == "dtype":
        return np.dtype(args[0] if isinstance(args[0], str) else bytes(args[0]).decode())
    if kind == "reconstruct":
        return _Call("array", args)
    raise RefusedBatch(f"{kind} cannot be called")


def _build(obj: Any, state: Any) -> Any:
    if isinstance(obj, np.dtype):
        return obj  # byte order and flags: uint8 has none that matter
    if isinstance(obj, _Call) and obj.kind == "array":
        _, shape, dtype, fortran, raw = state[:5]
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise RefusedBatch("an array whose dtype holds objects")
        raw = raw.encode("latin1") if isinstance(raw, str) else bytes(raw)
        array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")
        return array.copy()
    raise RefusedBatch("state for something that takes none")


def read_batch(raw: bytes) -> Any:
    """The object a CIFAR batch's bytes describe, built without running anything from the file."""
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(raw):
            raise RefusedBatch("truncated")
        out = raw[pos:pos + n]
        pos += n
        return out

    def line() -> str:
        nonlocal pos
        end = raw.index(b"\n", pos)
        out = raw[pos:end].decode("ascii")
        pos = end + 1
        return out

    def since_mark() -> list[Any]:
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def value(v: Any) -> Any:
        return v.result if isinstance(v, _Call) and v.result is not None else v

    while True:
        op = take(1)
        if op == b"\x80":
            take(1)  # PROTO
        elif op == b"\x95":
            take(8)  # FRAME
        elif op == b".":
            if len(stack) != 1:
                raise RefusedBatch("a malformed stream")
            return value(stack.pop())
        elif op == b"(":
            marks.append(len(stack))
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op == b"N":
            stack.append(None)
        elif op in (b"\x88", b"\x89"):
            stack.append(op == b"\x88")
        elif op == b"K":
            stack.append(take(1)[0])
        elif op == b"M":
            stack.append(struct.unpack("<H", take(2))[0])
        elif op == b"J":
            stack.append(struct.unpack("<i", take(4))[0])
        elif op == b"\x8a":
            n = take(1)[0]
            stack.append(int.from_bytes(take(n), "little", signed=True))
        elif op == b"G":
            stack.append(struct.unpack(">d", take(8))[0])
        elif op in (b"U", b"C"):  # Python 2 str (read as bytes, as CIFAR's own loader does) and bytes
            stack.append(take(take(1)[0]))
        elif op in (b"T", b"B"):
            stack.append(take(struct.unpack("<I", take(4))[0]))
        elif op == b"X":
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8"))
        elif op == b"\x8c":
            stack.append(take(take(1)[0]).decode("utf-8"))
        elif op in (b"q", b"r"):
            memo[take(1)[0] if op == b"q" else struct.unpack("<I", take(4))[0]] = stack[-1]
        elif op == b"\x94":
            memo[len(memo)] = stack[-1]
        elif op in (b"h", b"j"):
            stack.append(memo[take(1)[0] if op == b"h" else struct.unpack("<I", take(4))[0]])
        elif op == b"t":
            stack.append(tuple(value(v) for v in since_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):
            n = op[0] - 0x84
            items = tuple(value(v) for v in stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif op in (b"a", b"e"):
            items = [stack.pop()] if op == b"a" else since_mark()
            stack[-1].extend(value(v) for v in items)
        elif op in (b"s", b"u"):
            items = stack[-2:] if op == b"s" else since_mark()
            if op == b"s":
                del stack[-2:]
            target = stack[-1]
            for key, item in zip(items[::2], items[1::2], strict=True):
                target[value(key)] = value(item)
        elif op in (b"c", b"\x93"):
            module, name = (line(), line()) if op == b"c" else tuple(stack[-2:])
            if op == b"\x93":
                del stack[-2:]
            if (module, name) not in ALLOWED:
                raise RefusedBatch(f"refused global {module}.{name}")
            stack.append(("global", ALLOWED[(module, name)]))
        elif op == b"R":
            args, func = stack.pop(), stack.pop()
            if not (isinstance(func, tuple) and func[:1] == ("global",)):
                raise RefusedBatch("a call of something that is not an admitted global")
            stack.append(_reduce(func[1], tuple(value(a) for a in args)))
        elif op == b"b":
            state = stack.pop()
            obj = stack[-1]
            built = _build(obj, state)
            if isinstance(obj, _Call):
                obj.result = built  # memo entries that point at it see the array too
            stack[-1] = built
        else:
            raise RefusedBatch(f"opcode {op!r} is not one a CIFAR batch uses")
