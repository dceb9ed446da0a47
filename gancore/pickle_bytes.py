"""Pickle's byte format read as data: a reader of the opcodes, not an unpickler.

Python's unpickler runs whatever callables a file names. :func:`read_pickle` runs none: it walks the
opcodes of protocols 0-4 that plain containers use, builds dicts, lists, tuples, numbers and strings
itself, and hands each global the file names to the caller's ``allowed`` table; a global outside it, or
an opcode outside the set below, is refused before anything is built. What a call (REDUCE), a state
(BUILD) or a persistent id (BINPERSID) becomes is the caller's ``reduce``, ``build`` and ``persistent``:
data, never code of the file's choosing. Users: CIFAR's python batches (:mod:`gancore.data.cifar_batch`)
and the published FID weights (:mod:`gancore.metrics.pth_reader`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class RefusedPickle(ValueError):
    """The bytes are not a pickle this reader admits."""


@dataclass
class Call:
    """A call the file asks for, kept as data until BUILD gives it its state."""

    kind: str
    args: tuple
    state: Any = None
    result: Any = field(default=None)


def _no_persistent(pid: Any) -> Any:
    raise RefusedPickle("a persistent id where none is expected")


def read_pickle(raw: bytes, *, allowed: dict[tuple[str, str], str], reduce: Callable[[str, tuple], Any],
                build: Callable[[Any, Any], Any], persistent: Callable[[Any], Any] = _no_persistent,
                start: int = 0) -> tuple[Any, int]:
    """The object one pickle in ``raw`` (from ``start``) describes, and the offset just past its STOP.

    ``allowed`` maps a global's (module, name) to the kind ``reduce(kind, args)`` is called with.
    """
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    pos = start

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(raw):
            raise RefusedPickle("truncated")
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
        return v.result if isinstance(v, Call) and v.result is not None else v

    while True:
        op = take(1)
        if op == b"\x80":
            take(1)  # PROTO
        elif op == b"\x95":
            take(8)  # FRAME
        elif op == b".":
            if len(stack) != 1:
                raise RefusedPickle("a malformed stream")
            return value(stack.pop()), pos
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
            if (module, name) not in allowed:
                raise RefusedPickle(f"refused global {module}.{name}")
            stack.append(("global", allowed[(module, name)]))
        elif op == b"Q":
            stack.append(persistent(value(stack.pop())))
        elif op == b"R":
            args, func = stack.pop(), stack.pop()
            if not (isinstance(func, tuple) and func[:1] == ("global",)):
                raise RefusedPickle("a call of something that is not an admitted global")
            stack.append(reduce(func[1], tuple(value(a) for a in args)))
        elif op == b"b":
            state = stack.pop()
            obj = stack[-1]
            built = build(obj, state)
            if isinstance(obj, Call):
                obj.result = built  # memo entries that point at it see the array too
            stack[-1] = built
        else:
            raise RefusedPickle(f"opcode {op!r} is not one this reader admits")
