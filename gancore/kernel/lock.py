"""One training process per run directory: an exclusive ``fcntl`` lock on ``RUN/.lock``.

Held from the moment a run (fresh or resumed) starts checking its directory until it ends; the
operating system releases it when the process dies, so a crash never leaves a stale lock. A second
``gancore run`` into the same directory — or a ``--resume`` while the run still trains — is refused
with one line naming the process that holds it. Within one process the lock is re-entrant (tests
and notebooks build several trainers on one directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from gancore.errors import ConfigError
from gancore.files import require_regular

LOCK_NAME = ".lock"
_HELD: dict[Path, tuple[IO[str], int]] = {}


class RunLock:
    """The lock of one run directory; :meth:`release` (or process exit) gives it back."""

    def __init__(self, run_dir: Path, *, described: str | None = None) -> None:
        self.run_dir = run_dir.resolve()
        self.described = described or str(self.run_dir)
        """How the refusal names the folder (a run's ``checkpoints/`` elsewhere names both)."""
        self.created_dir = False
        self.held = False

    def acquire(self) -> RunLock:
        import fcntl

        if self.run_dir in _HELD:
            fh, count = _HELD[self.run_dir]
            _HELD[self.run_dir] = (fh, count + 1)
            self.held = True
            return self
        self.created_dir = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        require_regular(self.run_dir / LOCK_NAME, "lock file")
        fh = open(self.run_dir / LOCK_NAME, "a+")  # noqa: SIM115 (kept open while the lock is held)
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise ConfigError(f"--out: {self.described} is in use by another gancore process (pid {holder}); wait for "
                              "it to finish (or stop it) before resuming, or choose another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _HELD[self.run_dir] = (fh, 1)
        self.held = True
        return self

    def release(self, *, remove_if_unused: bool = False) -> None:
        """Give the lock back; with ``remove_if_unused``, a directory this lock created and nothing
        else wrote to is removed (a run that failed before it started leaves nothing behind)."""
        if not self.held:
            return
        self.held = False
        fh, count = _HELD[self.run_dir]
        if count > 1:
            _HELD[self.run_dir] = (fh, count - 1)
            return
        del _HELD[self.run_dir]
        lock_file = self.run_dir / LOCK_NAME
        if remove_if_unused and self.created_dir and [p.name for p in self.run_dir.iterdir()] == [LOCK_NAME]:
            lock_file.unlink()
            self.run_dir.rmdir()
        fh.close()
