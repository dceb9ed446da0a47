"""Atomic text writes, without torch (the core's feature plugins load at every CLI start)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")  # per process: never two writers on one file
    tmp.write_text(text)
    os.replace(tmp, path)
