"""The training kernel."""

from gancore.kernel.build import Model, build_model
from gancore.kernel.trainer import Trainer, TrainResult

__all__ = ["Model", "TrainResult", "Trainer", "build_model"]
