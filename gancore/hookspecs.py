"""Every hook a gancore plugin can implement, grouped by lifecycle.

Each hook is called with keyword arguments. Registration hooks return a list of classes that
carry a ``name: ClassVar[str]`` (and, where they take settings, a nested pydantic ``Config``).
Implement a hook by decorating a function of the same name with :data:`gancore.hookimpl` in the
module your distribution names under the ``gancore`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import pluggy

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run
    from gancore.variant import InitReport

hookspec = pluggy.HookspecMarker("gancore")

# -- Registration: called once, when the plugins are loaded. ---------------------------------


@hookspec
def gancore_register_variants() -> list[type]:
    """Register GAN variants.

    :return: a list of :class:`gancore.Variant` subclasses, each with a unique ``name``.
        ``gancore run NAME`` trains the variant called ``NAME``.
    """


@hookspec
def gancore_register_losses() -> list[type]:
    """Register adversarial losses.

    :return: a list of :class:`gancore.Loss` subclasses, each with a unique ``name``; the run
        config selects one with ``loss.name``.
    """


@hookspec
def gancore_register_regularizers() -> list[type]:
    """Register critic regularizers (penalties and constraints).

    :return: a list of :class:`gancore.Regularizer` subclasses, each with a unique ``name``;
        the run config applies them with ``regularizers = [{name = ..., weight = ...}]``.
    """


@hookspec
def gancore_register_datasets() -> list[type]:
    """Register data sources.

    :return: a list of :class:`gancore.DataSource` subclasses, each with a unique ``name``;
        the run config selects one with ``data.name``.
    """


@hookspec
def gancore_register_metrics() -> list[type]:
    """Register evaluation metrics.

    :return: a list of :class:`gancore.Metric` subclasses, each with a unique ``name``.
    """


@hookspec
def gancore_register_augments() -> list[type]:
    """Register augmentations of the critic's inputs (DiffAugment, ADA).

    :return: a list of :class:`gancore.Augment` subclasses, each with a unique ``name``; the run
        config selects one with ``augment.name`` (no augmentation when the config has no ``augment``).
    """


@hookspec
def gancore_plugin_settings() -> type | None:
    """Declare this plugin's own settings (a logger's project, a callback's interval).

    :return: a :class:`gancore.Settings` subclass. Its section is named like the plugin (its entry
        point's name): ``--set <plugin>.<key>=...`` and ``[<plugin>]`` in config files set it, it is
        validated like every section (one line naming the key), shown by ``gancore config`` and
        written to ``config.json``. Every such section also takes ``enabled`` (default true; false
        switches the plugin's lifecycle hooks off for that run). Hooks read the values with
        ``run.config.plugin_settings("<plugin>")``.
    """


@hookspec
def gancore_register_commands(cli: click.Group) -> None:
    """Add commands to the ``gancore`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)`` on it.
    :return: nothing.
    """


# -- Run lifecycle: called by the training kernel, on the main process only. -----------------
#
# Each of these receives ``run`` (a :class:`gancore.Run`: the run directory, config,
# built networks, device, step, ...) besides the arguments named; take only the ones you need.
# A lifecycle hook that raises is reported in one line and that plugin's lifecycle hooks are
# skipped for the rest of the run; training continues. The core's own side features
# (metrics.jsonl, TensorBoard, sample grids, periodic evaluation, init.json) are plugins on
# these hooks (``gancore.default_plugins``).


@hookspec
def gancore_run_start(run_dir: str, config: dict[str, Any], run: Run) -> None:
    """A training run starts (fresh or resumed), before its first step.

    :param run_dir: the run directory.
    :param config: the fully resolved config, as written to ``config.json``.
    :param run: the run (``run.resumed_from`` is the resumed checkpoint's step, or None).
    :return: nothing. Raise :class:`gancore.ConfigError` to refuse the run (the only error of a
        lifecycle hook that stops training).
    """


@hookspec
def gancore_initialized(reports: list[InitReport], run: Run) -> None:
    """A fresh run's variant set up its networks from the data (:meth:`gancore.Variant.initialize`).

    Called after ``gancore_run_start``, only for fresh runs whose variant reported something.

    :param reports: the :class:`gancore.InitReport` objects the variant returned.
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_log(step: int, record: dict[str, float], run: Run) -> None:
    """A log record is ready (every ``log.every`` steps, at the end, and after each evaluation).

    The core's ``metrics-log`` feature appends it to ``metrics.jsonl``.

    :param step: the number of completed generator steps.
    :param record: the logged values (means over the last interval), keyed like ``critic/adv``;
        evaluation records carry ``eval/<metric>/<value>`` keys.
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_step_end(step: int, run: Run) -> None:
    """An iteration (every phase of the schedule) ended; after ``gancore_log`` when one was due,
    before the step's checkpoint. Side jobs decide here whether they are due (``run.due(every)``).

    :param step: the number of completed generator steps.
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_samples_saved(step: int, path: str, run: Run) -> None:
    """A sample grid was written (by the ``sample-grids`` feature).

    :param step: the number of completed generator steps.
    :param path: the PNG file.
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_evaluated(step: int, results: list[dict[str, Any]], run: Run) -> None:
    """Metrics were computed during training (by the ``periodic-eval`` feature) and written to
    ``eval/*.json``.

    :param step: the number of completed generator steps.
    :param results: one JSON-ready result per metric, with provenance (``metric``, ``values``, ...).
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_checkpoint_saved(step: int, path: str, run: Run) -> None:
    """A checkpoint was written (atomically) to ``path``.

    :param step: the number of completed generator steps.
    :param path: the checkpoint file.
    :param run: the run.
    :return: nothing.
    """


@hookspec
def gancore_run_end(run_dir: str, step: int, status: str, run: Run) -> None:
    """A training run ended.

    :param run_dir: the run directory.
    :param step: the number of completed generator steps.
    :param status: ``"completed"``; ``"stopped"`` when a plugin ended it early (``run.stop``); or
        ``"failed"`` when training stopped on an error.
    :param run: the run.
    :return: nothing.
    """
