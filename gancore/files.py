"""Files written whole or not at all, and their hashes; torch-free (loaded at every CLI start).

Every file gancore writes goes through :func:`atomic_path`: the bytes go to a temporary file beside
the target, named ``.<name>.tmp<pid>`` (one writer per process, so two processes never share one),
which is renamed over the target once complete. A failed write removes the temporary file, leaves
any older file at the target as it was, and raises :class:`~gancore.errors.WriteError` naming the
file. A run directory's leftovers of a process killed mid-write match :data:`TEMPORARY_GLOB` and
are removed by :func:`remove_temporaries` (by the one process holding the run's lock).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gancore.errors import ConfigError, WriteError, os_error_reason

__all__ = ["TEMPORARY_GLOB", "atomic_path", "file_sha256", "remove_temporaries", "require_regular", "temporary_path",
           "write_bytes_atomic", "write_text_atomic"]

#: What :func:`temporary_path` names look like, for cleaning up after a crash.
TEMPORARY_GLOB = ".*.tmp*"


def temporary_path(path: Path) -> Path:
    """The temporary file beside ``path`` that this process writes before renaming it into place."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _not_a_file(path: Path) -> str | None:
    """What stands at ``path`` when it is not a regular file (``"a folder"``, ``"a pipe, device or socket"``);
    None when nothing is there or a regular file is. Raises the ``OSError`` of a path that cannot be looked at."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    return "a folder" if stat.S_ISDIR(mode) else "a pipe, device or socket"


def require_regular(path: Path, what: str = "file", *, folder_ok: bool = False) -> None:
    """A ConfigError when ``path`` exists and is not a regular file (a FIFO would block whoever opens it, a
    device would be read or written in place); nothing when it is absent or a file (or, with
    ``folder_ok``, a folder: a reader that already says what it does with one)."""
    try:
        kind = _not_a_file(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({os_error_reason(exc)})") from None
    if kind is not None and not (folder_ok and kind == "a folder"):
        raise ConfigError(f"{path}: is {kind}, not a regular file; the run's {what} must be a file (move it away)")


def _refuse_special(path: Path) -> None:
    """A rename would replace a folder, a FIFO, a device node or a socket: refuse instead."""
    try:
        kind = _not_a_file(path)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {os_error_reason(exc)}") from None
    if kind == "a folder":
        raise WriteError(f"cannot write {path}: is a folder, expected a file")
    if kind is not None:
        raise WriteError(f"cannot write {path}: not a regular file (a pipe, device or socket); "
                         "choose a file path")


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False,
                describe: Callable[[BaseException], str | None] | None = None) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it into place when the block ends.

    :param fsync: flush the file to the disk before the rename (checkpoints, packs).
    :param describe: turns a writer's own exception (not an OSError) into the reason of a
        :class:`WriteError`; ``None`` from it lets the exception through unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _refuse_special(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except Exception as exc:
        reason = (describe(exc) if describe is not None else None) or writer_reason(exc)
        if reason is None:
            raise
        raise WriteError(f"cannot write {path}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def writer_reason(exc: BaseException) -> str | None:
    """Why a writer failed, in plain words, for the errors writers raise besides a plain OSError: numpy's cut-short
    write (an OSError without errno: "16384 requested and 468 written"), safetensors' own error wrapping the
    system's ("File too large (os error 27)"). None: not a write failure this knows."""
    import errno as errnos

    text = str(exc)
    if isinstance(exc, OSError):
        if exc.errno is None and _SHORT_WRITE.search(text):
            return "the write was cut short (the disk is full or a file size limit was reached)"
        return os_error_reason(exc)
    if type(exc).__name__ == "SafetensorError":
        found = _OS_ERROR.search(text)
        if found:
            return os_error_reason(OSError(int(found.group(1)), os.strerror(int(found.group(1)))))
        if "too large" in text.lower() or "no space" in text.lower():
            return os_error_reason(OSError(errnos.EFBIG, "File too large"))
        return text
    return None


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(data: bytes, path: str | Path) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_temporaries(folder: Path) -> None:
    """Remove what processes killed mid-write left in ``folder`` (call only while holding its lock)."""
    for stale in folder.glob(TEMPORARY_GLOB):
        stale.unlink(missing_ok=True)


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
