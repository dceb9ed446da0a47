"""gancore: a plugin-based framework for training GANs on PyTorch.

Plugins import from here: the ``hookimpl`` marker and the interfaces they implement.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("gancore")
"""Marker for hook implementations: decorate ``gancore_*`` functions with it."""

from gancore.codes import Code  # noqa: E402
from gancore.data import DataSource, DecodePlan, ImageSettings, TensorData  # noqa: E402
from gancore.errors import (  # noqa: E402
    CheckpointError,
    ConfigError,
    GancoreError,
    PluginError,
    TrainingError,
)
from gancore.interfaces import (  # noqa: E402
    Batch,
    Critic,
    DataSpec,
    Generator,
    Loss,
    Networks,
    NoSettings,
    PenaltyInput,
    PenaltySettings,
    Players,
    Regularizer,
    Settings,
    StepContext,
    StepOutput,
)
from gancore.metrics import Metric  # noqa: E402
from gancore.variant import InitReport, Phase, Preset, Variant  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "CheckpointError",
    "Code",
    "ConfigError",
    "Critic",
    "DataSource",
    "DataSpec",
    "DecodePlan",
    "GancoreError",
    "Generator",
    "ImageSettings",
    "InitReport",
    "Loss",
    "Metric",
    "Networks",
    "NoSettings",
    "PenaltyInput",
    "PenaltySettings",
    "Phase",
    "Players",
    "PluginError",
    "Preset",
    "Regularizer",
    "Settings",
    "StepContext",
    "StepOutput",
    "TensorData",
    "TrainingError",
    "Variant",
    "__version__",
    "hookimpl",
]
