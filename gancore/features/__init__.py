"""The core's side features, plugins on the run lifecycle hooks like any third party's.

Each is registered by :func:`gancore.plugins.load_plugins` under its name (``gancore.<name>``),
shows in ``gancore plugins``, and can be switched off with ``GANCORE_DISABLE_PLUGINS``:

- ``gancore.metrics-log``: ``metrics.jsonl`` (and its truncation to the checkpoint on resume);
- ``gancore.tensorboard``: TensorBoard scalars and sample grids when ``log.tensorboard``;
- ``gancore.sample-grids``: ``samples/step_*.png`` every ``log.sample_every`` steps;
- ``gancore.periodic-eval``: metrics every ``eval.every`` steps, ``eval/*.json``;
- ``gancore.init-report``: the variant's initialize reports, printed and in ``init.json``.
"""

from __future__ import annotations

from gancore.features.init_report import InitReportWriter
from gancore.features.metrics_log import MetricsLog
from gancore.features.periodic_eval import PeriodicEval
from gancore.features.sample_grids import SampleGrids
from gancore.features.tensorboard import TensorBoardLog


def default_features() -> list[tuple[str, object]]:
    """Fresh instances of the core's feature plugins, with their plugin names."""
    # pluggy calls the last registered first: at a step's end the grid is drawn, then evaluated
    return [("gancore.metrics-log", MetricsLog()), ("gancore.tensorboard", TensorBoardLog()),
            ("gancore.periodic-eval", PeriodicEval()), ("gancore.sample-grids", SampleGrids()),
            ("gancore.init-report", InitReportWriter())]
