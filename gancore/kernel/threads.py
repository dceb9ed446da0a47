"""The thread policy: how many intra-op threads a training process uses, shared with its neighbours.

``train.threads`` is ``auto`` or a count; the environment's ``OMP_NUM_THREADS``, when set, always wins.
``auto`` takes the cores this process may use (its CPU affinity, capped by a cgroup CPU quota) and
divides them among the gancore training processes that share those cores: each registers itself in a
folder of lock files (``$GANCORE_SHARE_DIR``, else ``<tmp>/gancore-<uid>/threads``) for its life, and
recounts the live ones every couple of seconds, so runs started side by side (``--nproc N`` on a CPU,
a sweep's parallel trials, several shells) shrink to their share of the cores and grow back when the
others end. torch's OpenMP threads otherwise spin against each other on oversubscribed cores (measured
on 2 cores: 4 grid runs at 2 threads each still running after 15 times one run's time; with auto, 0.7 of
four runs one after another: benchmarks/README.md, "Runs that share a machine").

A process outside gancore cannot be counted; :class:`SlowdownWatch` notices instead when the steps run
several times slower than the run's own first steps and says so, once, with the remedy.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gancore.errors import ConfigError

RECOUNT_SECONDS = 2.0
SHARING_REMEDY = ("Runs that share a machine run best with fewer threads each (OMP_NUM_THREADS=1, or --set "
                  "train.threads=1) or with cores of their own (taskset -c 0 gancore run ...).")


def _threads(n: int) -> str:
    return f"{n} thread" + ("s" if n != 1 else "")


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def affinity() -> set[int]:
    """The CPUs this process may run on."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def usable_cores(cores: set[int] | None = None, quota: float | None = None) -> int:
    """The cores this process may use: its affinity, capped by the cgroup's CPU quota (rounded up)."""
    n = len(cores if cores is not None else affinity())
    quota = _cgroup_quota() if quota is None else quota
    if quota is not None and quota > 0:
        n = min(n, max(1, math.ceil(quota - 1e-9)))
    return max(1, n)


def share_dir() -> Path:
    base = os.environ.get("GANCORE_SHARE_DIR")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(base) if base else Path(tempfile.gettempdir()) / f"gancore-{uid}" / "threads"


class Registry:
    """This process's entry among the gancore processes training on this machine (a held ``flock``)."""

    def __init__(self, folder: Path, cores: set[int]) -> None:
        self.folder, self.cores = folder, cores
        self.path: Path | None = None
        self._fh: Any = None

    def join(self) -> bool:
        """Register; False where the folder or locks are not available (the process then counts alone)."""
        try:
            import fcntl

            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{os.getpid()}-{time.monotonic_ns()}"
            staging = self.folder / f"{name}.new"
            self._fh = open(staging, "w")  # noqa: SIM115 (held open, and locked, for the process's life)
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fh.write(json.dumps({"pid": os.getpid(), "cores": sorted(self.cores)}))
            self._fh.flush()
            self.path = self.folder / f"{name}.json"
            os.replace(staging, self.path)  # visible to the others only once locked and written
            return True
        except (ImportError, OSError):
            self.leave()
            return False

    def count(self) -> int:
        """Live registered processes whose cores overlap this one's (this one included; this process's other
        trainers, which run in turn with it, do not count)."""
        import fcntl

        live = 1
        seen: set[int] = set()
        try:
            entries = list(self.folder.glob("*.json"))
        except OSError:
            return live
        for entry in entries:
            if entry == self.path:
                continue
            try:
                with open(entry) as fh:
                    try:
                        fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except BlockingIOError:  # held: its process is alive
                        entry_info = json.loads(fh.read() or "{}")
                        cores = set(entry_info.get("cores", []))
                        pid = entry_info.get("pid")
                        if pid != os.getpid() and pid not in seen and (not cores or cores & self.cores):
                            seen.add(pid)  # one process counts once, however many trainers it made
                            live += 1
                        continue
                    entry.unlink(missing_ok=True)  # nobody holds it: its process ended without removing it
            except (OSError, ValueError, AttributeError):
                continue
        return live

    def leave(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


class ThreadPolicy:
    """Sets and keeps torch's intra-op thread count for one training process (see the module's text)."""

    def __init__(self, setting: str | int, *, environ: dict[str, str] | None = None,
                 folder: Path | None = None, cores: set[int] | None = None, quota: float | None = None,
                 set_threads: Callable[[int], None] = torch.set_num_threads) -> None:
        env = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
        self._set = set_threads
        self.cores = cores if cores is not None else affinity()
        self.usable = usable_cores(self.cores, quota)
        self.registry: Registry | None = None
        self.fixed: int | None = None
        if env:
            if not env.isdigit() or int(env) < 1:
                raise ConfigError(f"OMP_NUM_THREADS: expected a whole number >= 1, got {env!r}")
            self.fixed, self.source = int(env), "OMP_NUM_THREADS"
        elif setting != "auto":
            self.fixed, self.source = int(setting), "train.threads"
        else:
            self.source = "auto"
            self.registry = Registry(folder or share_dir(), self.cores)
            if not self.registry.join():
                self.registry = None
        self.sharing = 1
        self.threads = self.fixed or self.usable
        self._last_count = -math.inf

    def start(self) -> str:
        """Apply the policy; returns how the count was chosen (for the run's first line)."""
        if self.fixed is not None:
            self._set(self.fixed)
            return f"{_threads(self.fixed)}, {self.source}"
        self.recount(force=True)
        return self.describe()

    def describe(self) -> str:
        share = f" shared by {self.sharing} gancore runs" if self.sharing > 1 else ""
        return f"{_threads(self.threads)}, auto: {self.usable} cores{share}"

    def recount(self, force: bool = False) -> bool:
        """Re-divide the cores if the count of sharing processes changed; True when the thread count did."""
        if self.registry is None:
            if force:
                self._set(self.threads)
            return False
        now = time.monotonic()
        if not force and now - self._last_count < RECOUNT_SECONDS:
            return False
        self._last_count = now
        self.sharing = self.registry.count()
        threads = max(1, self.usable // self.sharing)
        changed = threads != self.threads
        if changed or force:
            self.threads = threads
            self._set(threads)
        return changed

    def close(self) -> None:
        if self.registry is not None:
            self.registry.leave()
            self.registry = None


class SlowdownWatch:
    """Notices steps running ``factor`` times slower than the run's first ones; reports it once.

    The reference is the median of ``window`` steps after ``warmup``; each later full window's median is
    compared with it. A change of the thread count (the policy re-dividing the cores) starts a new reference.
    """

    def __init__(self, echo: Callable[[str], None], *, factor: float = 3.0, warmup: int = 5, window: int = 20,
                 remedy: str = "") -> None:
        self.echo, self.factor, self.warmup, self.window, self.remedy = echo, factor, warmup, window, remedy
        self.reset()
        self.reported = False

    def reset(self) -> None:
        self._skip = self.warmup
        self.reference: float | None = None
        self._times: deque[float] = deque(maxlen=self.window)

    def add(self, seconds: float) -> None:
        if self.reported:
            return
        if self._skip > 0:
            self._skip -= 1
            return
        self._times.append(seconds)
        if len(self._times) < self.window:
            return
        median = statistics.median(self._times)
        self._times.clear()
        if self.reference is None:
            self.reference = median
        elif median > self.factor * self.reference:
            self.reported = True
            self.echo(f"note: steps now take {median / self.reference:.1f}x as long as this run's first ones "
                      f"({median * 1000:.0f} ms against {self.reference * 1000:.0f} ms): another process is "
                      f"using this machine's cores. {self.remedy}")
