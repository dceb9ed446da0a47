"""The training kernel: the built run, its state and checkpoints, the phases, the loop."""

from gancore.kernel.build import BuiltRun, build_run
from gancore.kernel.run import Run
from gancore.kernel.state import TrainState
from gancore.kernel.trainer import Trainer, TrainResult

__all__ = ["BuiltRun", "Run", "TrainResult", "TrainState", "Trainer", "build_run"]
