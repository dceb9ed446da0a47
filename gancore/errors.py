"""Exceptions raised for users' mistakes and training failures.

The CLI renders every :class:`GancoreError` as one line on stderr; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
import os


class GancoreError(Exception):
    """Base class of every error gancore reports to a user."""

    exit_code: int = 1


class ConfigError(GancoreError):
    """A configuration key, value or name is wrong (exit code 2)."""

    exit_code = 2


class PluginError(GancoreError):
    """A plugin is broken, duplicated, or asked for but not installed (exit code 2)."""

    exit_code = 2


class CheckpointError(GancoreError):
    """A checkpoint file is missing, truncated, foreign or does not fit the run (exit code 2)."""

    exit_code = 2


class TrainingError(GancoreError):
    """Training stopped: a non-finite loss, or a failure inside a step (exit code 1)."""

    exit_code = 1


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EFBIG: "file too large (the disk is full or a file size limit was reached)",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOENT: "no such file or folder",
    errno.EEXIST: "already exists",
    errno.EROFS: "read-only file system",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENOTEMPTY: "folder not empty",
}


def os_error_reason(exc: OSError) -> str:
    """What is wrong, in plain words (permission denied, disk full, a file where a folder should be, ...)."""
    reason = _REASONS.get(exc.errno or -1) or exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and exc.filename is not None:
        if os.path.lexists(exc.filename) and not os.path.isdir(exc.filename):
            reason = "is a file, not a folder"  # mkdir(exist_ok=True) on a path that is a file
    return reason


def describe_os_error(exc: OSError) -> str:
    """An OSError as one plain line: the path(s) and what is wrong with them."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {os_error_reason(exc)}" if paths else os_error_reason(exc)


class WriteError(GancoreError):
    """A file could not be written (disk full, permission, ...): nothing half-written is left (exit 1)."""

    exit_code = 1
