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
    **dict.fromkeys(("Augment", "AugmentSettings", "Batch", "DataSpec", "Loss",
                     "NetworkWidths", "Networks", "NoSettings", "PenaltyInput",
                     "PenaltySettings", "Regularizer", "Settings", "StepContext", "StepOutput"), "gancore.interfaces"),
    **dict.fromkeys(("Critic", "Generator"), "gancore.modules"),
    **dict.fromkeys(("Metric", "MetricContext"), "gancore.metrics"),
    "Run": "gancore.kernel.run_view",
    "lazy_module": "gancore.lazy",
    **dict.fromkeys(("Model", "load", "train"), "gancore.api"),
    **dict.fromkeys(("CRITIC", "Capabilities", "InitReport", "Phase", "Preset", "Variant", "gpu_preset",
                     "patchgan_min_image_size"), "gancore.variant"),
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
        Augment,
        AugmentSettings,
        Batch,
        DataSpec,
        Loss,
        Networks,
        NetworkWidths,
        NoSettings,
        PenaltyInput,
        PenaltySettings,
        Regularizer,
        Settings,
        StepContext,
        StepOutput,
    )
    from gancore.kernel.run_view import Run
    from gancore.lazy import lazy_module
    from gancore.metrics import Metric, MetricContext
    from gancore.modules import Critic, Generator
    from gancore.variant import (
        CRITIC,
        Capabilities,
        InitReport,
        Phase,
        Preset,
        Variant,
        gpu_preset,
        patchgan_min_image_size,
    )

__version__ = "0.1.0"

# The public names, grouped by what a plugin author writes (docs/api.md documents them in this
# order). A DCGAN-like variant needs the first group and ``hookimpl``.
__all__ = [
    # variants
    "Variant", "Phase", "CRITIC", "Capabilities", "patchgan_min_image_size", "Preset", "gpu_preset", "InitReport",
    "Networks",
    "Generator", "Critic", "Batch", "StepContext", "StepOutput", "Settings", "NoSettings", "NetworkWidths",
    "DataSpec", "Code",
    # losses and regularizers
    "Loss", "Regularizer", "PenaltyInput", "PenaltySettings",
    # augmentations of what the critic sees
    "Augment", "AugmentSettings",
    # data sources
    "DataSource", "TensorData", "ImageSettings", "DecodePlan",
    # metrics
    "Metric", "MetricContext",
    # lifecycle plugins (hooks on a training run)
    "Run",
    # gancore from Python
    "train", "load", "Model",
    # errors
    "GancoreError", "ConfigError", "PluginError", "CheckpointError", "TrainingError",
    # helpers
    "hookimpl", "lazy_module", "__version__",
]
