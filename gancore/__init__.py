"""gancore: a plugin-based framework for training GANs on PyTorch.

Plugins import from here: the ``hookimpl`` marker and the interfaces they implement.
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("gancore")
"""Marker for hook implementations: decorate ``gancore_*`` functions with it."""

from typing import TYPE_CHECKING, Any  # noqa: E402

#: Where each public name lives. They load on first access (PEP 562), so that ``import gancore``
#: and the CLI's registration path stay free of torch: ``Generator`` and ``Critic`` (nn.Module
#: subclasses) and ``TensorData`` import it when first read, the others do not.
_EXPORTS = {
    "Code": "gancore.codes",
    **dict.fromkeys(("DataSource", "DecodePlan", "ImageSettings", "TensorData"), "gancore.data"),
    **dict.fromkeys(("CheckpointError", "ConfigError", "GancoreError", "PluginError", "TrainingError"),
                    "gancore.errors"),
    **dict.fromkeys(("Batch", "DataSpec", "Loss", "Networks", "NoSettings", "PenaltyInput", "PenaltySettings",
                     "Regularizer", "Settings", "StepContext", "StepOutput"), "gancore.interfaces"),
    **dict.fromkeys(("Critic", "Generator"), "gancore.modules"),
    **dict.fromkeys(("Metric", "MetricContext"), "gancore.metrics"),
    "lazy_module": "gancore.lazy",
    **dict.fromkeys(("Model", "load", "train"), "gancore.api"),
    **dict.fromkeys(("InitReport", "Phase", "Preset", "Variant"), "gancore.variant"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gancore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from gancore.api import Model, load, train
    from gancore.codes import Code
    from gancore.data import DataSource, DecodePlan, ImageSettings, TensorData
    from gancore.errors import CheckpointError, ConfigError, GancoreError, PluginError, TrainingError
    from gancore.interfaces import (
        Batch,
        DataSpec,
        Loss,
        Networks,
        NoSettings,
        PenaltyInput,
        PenaltySettings,
        Regularizer,
        Settings,
        StepContext,
        StepOutput,
    )
    from gancore.lazy import lazy_module
    from gancore.metrics import Metric, MetricContext
    from gancore.modules import Critic, Generator
    from gancore.variant import InitReport, Phase, Preset, Variant

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
    "Model",
    "MetricContext",
    "Networks",
    "NoSettings",
    "PenaltyInput",
    "PenaltySettings",
    "Phase",
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
    "lazy_module",
    "load",
    "train",
]
