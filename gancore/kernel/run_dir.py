"""A run directory: its lock, its layout, ``config.json``, what a crash left, which checkpoint to
resume, and the rotation of checkpoints. The trainer asks; this module owns the folder.

Layout: ``RUN/config.json``, ``RUN/metrics.jsonl``, ``RUN/samples/``, ``RUN/checkpoints/step_*.safetensors``,
``RUN/.lock``. Only the main process of a distributed run writes; the others know the paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gancore.errors import CheckpointError, ConfigError, WriteError
from gancore.files import remove_temporaries, require_regular, write_text_atomic
from gancore.kernel import checkpoint as ck
from gancore.kernel.lock import RunLock


class RunDirectory:
    """The folder of one run, held (locked) by this process for the run's life."""

    def __init__(self, path: str | Path, *, main: bool = True) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.samples = self.path / "samples"
        self.main = main
        self.lock = RunLock(self.path)
        self.checkpoints_lock: RunLock | None = None
        """A lock on the real folder of ``checkpoints/`` when it is a link elsewhere (two runs sharing it)."""
        self.last_checkpoint: Path | None = None
        """The newest checkpoint of this run that is known good (written or resumed from)."""

    # -- the lock ----------------------------------------------------------------------------
    def acquire(self) -> None:
        """Lock the run directory, and the real folder of ``checkpoints/`` when that is a link out of it:
        two run directories whose checkpoints are one folder never train (or resume) at once."""
        if not self.main:
            return
        self.lock.acquire()
        try:
            real = self.checkpoints.resolve(strict=True) if self.checkpoints.is_symlink() else None
        except (OSError, RuntimeError):  # a dangling link or a loop: the checks that follow name it
            real = None
        if real is not None and real.is_dir() and real != self.path.resolve() / "checkpoints":
            lock = RunLock(real, described=f"{real} (the checkpoints/ folder of {self.path})")
            try:
                lock.acquire()
            except ConfigError:
                self.lock.release()
                raise
            self.checkpoints_lock = lock

    def release(self, *, remove_if_unused: bool = False) -> None:
        """Give the lock back; ``remove_if_unused``: a run that failed to start leaves nothing behind."""
        if self.checkpoints_lock is not None:
            self.checkpoints_lock.release()
            self.checkpoints_lock = None
        self.lock.release(remove_if_unused=remove_if_unused)

    # -- starting ----------------------------------------------------------------------------
    def check(self, resume: bool) -> bool:
        """Refuse a fresh run into a used folder and a resume of an empty one; True when a resume must
        start from step 0 (a run killed before its first checkpoint)."""
        for name in ("config.json", "metrics.jsonl", "stopped.json"):
            # a folder in metrics.jsonl's place is the metrics log's to report; FIFOs and devices never pass
            require_regular(self.path / name, name, folder_ok=name == "metrics.jsonl")
        checkpoints = ck.list_checkpoints(self.checkpoints)
        has_run = (self.path / "config.json").exists() or bool(checkpoints)
        if resume and not has_run:
            raise ConfigError(f"--resume: {self.path} holds no run to resume")
        if not resume and has_run:
            raise ConfigError(
                f"--out: {self.path} already holds a run; pass --resume to continue it or choose another --out"
            )
        return resume and not checkpoints

    def create(self, config: dict[str, Any]) -> None:
        """Lay the folder out and write ``config.json``, once everything was built (a build error leaves
        nothing behind); remove the temporary files of a process killed mid-write (the lock says no
        other writer is alive)."""
        if not self.main:
            return
        self.samples.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        for folder in (self.path, self.checkpoints):
            remove_temporaries(folder)
        write_text_atomic(json.dumps(config, indent=2) + "\n", self.path / "config.json")

    def resume(self, restore: Callable[[ck.Checkpoint], None], *, max_step: int,
               echo: Callable[[str], None]) -> Path:
        """Restore from the newest usable checkpoint (a damaged newer one is named and skipped: restore
        overwrites every part of the state, so a failed attempt leaves nothing behind); returns it."""
        unusable: list[CheckpointError] = []
        for _, path in reversed(ck.list_checkpoints(self.checkpoints)):
            try:
                ckpt = ck.read_checkpoint(path)
                if ckpt.step > max_step:
                    raise ConfigError(f"train.steps: {max_step} is below the step of the checkpoint it resumes "
                                      f"({ckpt.step}, {path}); pass --set train.steps=N with N >= {ckpt.step}")
                restore(ckpt)
                break
            except CheckpointError as exc:
                unusable.append(exc)
        else:
            raise unusable[0]
        if unusable:
            echo(f"resume: {unusable[0]}; resuming from the older {path} instead")
        self.last_checkpoint = path
        return path

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / ck.checkpoint_name(step)

    def recorded_precision(self) -> str | None:
        """The precision the newest checkpoint was trained in (its metadata), or None."""
        from safetensors import safe_open

        for _, path in reversed(ck.list_checkpoints(self.checkpoints)):
            try:
                with safe_open(str(path), framework="pt") as f:
                    value = (f.metadata() or {}).get("precision")
            except Exception:  # noqa: BLE001 (a damaged file: the resume itself names it and goes on)
                continue
            return value if value in ("fp32", "bf16", "fp16") else None
        return None

    def good_checkpoint(self) -> str:
        """The last good checkpoint, for messages."""
        return str(self.last_checkpoint or "none written yet")

    def write_checkpoint(self, step: int, tensors: dict[str, Any], metadata: dict[str, str], *, keep: int) -> Path:
        """Write the checkpoint of ``step`` atomically and keep the newest ``keep``."""
        path = self.checkpoint_path(step)
        if not self.main:  # the main process writes; the others know its path
            self.last_checkpoint = path
            return path
        try:
            ck.write_atomic(tensors, metadata, path)
        except WriteError as exc:
            raise WriteError(f"{exc}; training stopped at step {step}. Last good checkpoint: "
                             f"{self.good_checkpoint()}") from None
        self.last_checkpoint = path
        for _, old in ck.list_checkpoints(self.checkpoints)[:-keep]:
            old.unlink()
        return path

    def write_stopped(self, step: int, reason: str) -> None:
        """``stopped.json``: the run ended at ``step`` before its last step, and why."""
        if self.main:
            write_text_atomic(json.dumps({"step": step, "reason": reason}) + "\n", self.path / "stopped.json")

    def clear_stopped(self) -> None:
        """A resumed run goes on: the stop it continues from is no longer the run's end."""
        if self.main:
            (self.path / "stopped.json").unlink(missing_ok=True)

    def newest_samples(self) -> Path | None:
        found = sorted(self.samples.glob("step_*.png")) if self.samples.is_dir() else []
        return found[-1] if found else None
