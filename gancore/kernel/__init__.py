"""The training kernel: the built run, its state and checkpoints, the phases, the loop.

Its names load on first access (PEP 562): the CLI's registration path imports
``gancore.files`` and ``gancore.kernel.lock`` without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {"BuiltRun": "build", "build_run": "build", "Run": "run", "TrainState": "state",
            "Trainer": "trainer", "TrainResult": "trainer"}

__all__ = ["BuiltRun", "Run", "TrainResult", "TrainState", "Trainer", "build_run"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"gancore.kernel.{_EXPORTS[name]}"), name)


if TYPE_CHECKING:
    from gancore.kernel.build import BuiltRun, build_run
    from gancore.kernel.run_view import Run
    from gancore.kernel.state import TrainState
    from gancore.kernel.trainer import Trainer, TrainResult
