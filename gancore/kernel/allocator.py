"""``train.allocator``: the C allocator's handling of large blocks during CPU training.

glibc's malloc serves blocks above its mmap threshold (128 KiB at start, raised as large blocks are
freed, at most 32 MiB) with fresh ``mmap`` pages, and gives the top of its heap back to the kernel
past its trim threshold. An image network's activations and gradients are megabytes each and are
freed and allocated again every iteration, so the first write to each of them page-faults every
time (seen as a LeakyReLU backward of 16 MiB taking 22 ms instead of 0.7 ms). ``keep``
(``mallopt``: mmap threshold 32 MiB, trim threshold 1 GiB, top pad 64 MiB) keeps freed memory in the
process for the next iteration: measured +4% images/s for DCGAN at 64x64 on the CPU
(benchmarks/README.md; the peak resident memory was not measured with it). The setting is process-wide and stays for the
life of the process; it applies only where glibc is the C library (elsewhere ``keep`` is a config
error and ``auto`` does nothing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from gancore.errors import ConfigError

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEEP = ((M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # glibc only
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


_applied = False


def keep_freed_memory() -> bool:
    """Apply :data:`KEEP` with ``mallopt`` (once per process); False where glibc is not the C library
    or refused a value."""
    global _applied
    if _applied:
        return True
    libc = _glibc()
    if libc is None:
        return False
    _applied = all(libc.mallopt(param, value) == 1 for param, value in KEEP)
    return _applied


def apply_allocator(setting: str, device_type: str) -> str | None:
    """``train.allocator``: ``auto`` keeps freed memory when training on the CPU (where glibc is),
    ``keep`` always (a one-line error without glibc), ``system`` leaves malloc as it is. Returns the
    phrase for the run's first line, None when nothing changed."""
    if setting == "system" or (setting == "auto" and device_type != "cpu"):
        return None
    if keep_freed_memory():
        return "malloc keeps freed memory"
    if setting == "keep":
        raise ConfigError("train.allocator: keep needs glibc's malloc (mallopt), which this process does not use; "
                          "set train.allocator=system")
    return None
