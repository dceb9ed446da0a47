"""What lifecycle hooks see of a training run: the ``run`` argument of every ``gancore_*`` run hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gancore.interfaces import Batch, DataSpec
from gancore.kernel.build import BuiltRun

if TYPE_CHECKING:
    from gancore.config import RunConfig
    from gancore.kernel.run_dir import RunDirectory
    from gancore.kernel.state import TrainState
    from gancore.plugins import Lifecycle, PluginHost


@dataclass
class Run:
    """A training run as the lifecycle hooks see it (on the main process).

    Read what you need; the kernel owns the training state. ``extras`` is scratch space for
    plugins that keep per-run state (key it by your plugin's name). :meth:`log`,
    :meth:`samples_saved` and :meth:`evaluated` let a feature plugin announce what it wrote to
    the others (the ``gancore_log``, ``gancore_samples_saved`` and ``gancore_evaluated`` hooks).
    """

    run_dir: Path
    config: RunConfig
    built: BuiltRun
    """The variant, its networks (``built.nets``), regularizers and EMA (``built.ema``)."""
    spec: DataSpec
    device: torch.device
    total_steps: int
    preview_batch: Batch
    """A fixed batch of training data, the same at every call: the inputs of progress grids."""
    landmarks: Tensor | None
    """Reference points of vector data (a mixture's mode centres), for scatter plots."""
    host: PluginHost
    hooks: Lifecycle
    state: TrainState
    """The training state (read it; the kernel owns it)."""
    directory: RunDirectory
    """The run's folder (the kernel's: read ``run.last_checkpoint`` instead)."""
    echo: Callable[[str], None] = print
    resumed_from: int | None = None
    """The step of the checkpoint this run resumed from; None for a fresh run."""
    last_samples: Path | None = None
    """The newest sample grid a plugin announced (:meth:`samples_saved`)."""
    extras: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    """Set by :meth:`stop`: why the run ends before ``train.steps``."""

    def stop(self, reason: str) -> None:
        """End the run after this step, before ``train.steps`` (early stopping, a sweep's pruner): the kernel
        writes a checkpoint and ``stopped.json`` (step and ``reason``) and ends the run with status
        ``stopped``; ``--resume`` continues it. Under torch.distributed the processes stop together at the
        next logging step."""
        self.stop_reason = reason

    @property
    def last_checkpoint(self) -> Path | None:
        """The newest good checkpoint of this run (written, or resumed from)."""
        return self.directory.last_checkpoint

    @property
    def step(self) -> int:
        """Completed generator steps."""
        return self.state.step

    @property
    def is_last(self) -> bool:
        """True at the run's final step (``train.steps``)."""
        return self.step == self.total_steps

    def due(self, every: int) -> bool:
        """True when a side job with interval ``every`` (0: only at the end) runs at this step."""
        return bool(every and self.step % every == 0) or self.is_last

    def log(self, record: dict[str, Any]) -> None:
        """Announce a record for ``metrics.jsonl`` and every other log (the ``gancore_log`` hook)."""
        self.hooks.call("gancore_log", step=self.step, record=record, run=self)

    def samples_saved(self, path: Path) -> None:
        self.last_samples = path
        self.hooks.call("gancore_samples_saved", step=self.step, path=str(path), run=self)

    def evaluated(self, results: list[dict[str, Any]]) -> None:
        self.hooks.call("gancore_evaluated", step=self.step, results=results, run=self)
