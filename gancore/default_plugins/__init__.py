"""The core's default plugins: registered like any third party's, by :func:`gancore.app.load_plugins`.

- ``gancore.builtin`` (:mod:`.builtins`): the built-in losses, regularizers, data sources and metrics;
- the side features on the run lifecycle hooks, each under its plugin name and each switched off
  with ``GANCORE_DISABLE_PLUGINS``:

  - ``gancore.metrics-log``: ``metrics.jsonl`` (and its truncation to the checkpoint on resume);
  - ``gancore.tensorboard``: TensorBoard scalars and sample grids when ``log.tensorboard``;
  - ``gancore.sample-grids``: ``samples/step_*.png`` every ``log.sample_every`` steps;
  - ``gancore.periodic-eval``: metrics every ``eval.every`` steps, ``eval/*.json``;
  - ``gancore.init-report``: the variant's initialize reports, printed and in ``init.json``.
"""

from __future__ import annotations

from gancore.default_plugins import builtins
from gancore.default_plugins.init_report import InitReportWriter
from gancore.default_plugins.metrics_log import MetricsLog
from gancore.default_plugins.periodic_eval import PeriodicEval
from gancore.default_plugins.sample_grids import SampleGrids
from gancore.default_plugins.tensorboard import TensorBoardLog


def default_plugins() -> list[tuple[str, str, object]]:
    """Fresh instances of the core's default plugins: ``(plugin name, source, plugin)``."""
    # pluggy calls the last registered first: at a step's end the grid is drawn, then evaluated
    features = [("gancore.metrics-log", MetricsLog()), ("gancore.tensorboard", TensorBoardLog()),
                ("gancore.periodic-eval", PeriodicEval()), ("gancore.sample-grids", SampleGrids()),
                ("gancore.init-report", InitReportWriter())]
    return [("gancore.builtin", "gancore (core built-ins)", builtins),
            *((name, "gancore (core feature)", plugin) for name, plugin in features)]
