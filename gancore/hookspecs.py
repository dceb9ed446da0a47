"""Every hook a gancore plugin can implement, grouped by lifecycle.

Each hook is called with keyword arguments. Registration hooks return a list of classes that
carry a ``name: ClassVar[str]`` (and, where they take settings, a nested pydantic ``Config``).
Implement a hook by decorating a function of the same name with :data:`gancore.hookimpl` in the
module your distribution names under the ``gancore`` entry-point group.
"""

from __future__ import annotations

from typing import Any

import click
import pluggy

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
def gancore_register_commands(cli: click.Group) -> None:
    """Add commands to the ``gancore`` command line.

    :param cli: the root :class:`click.Group`; call ``cli.add_command(...)`` on it.
    :return: nothing.
    """


# -- Run lifecycle: called by the training kernel, on the main process only. -----------------


@hookspec
def gancore_run_start(run_dir: str, config: dict[str, Any]) -> None:
    """A training run starts (fresh or resumed).

    :param run_dir: the run directory.
    :param config: the fully resolved config, as written to ``config.json``.
    :return: nothing.
    """


@hookspec
def gancore_log(step: int, record: dict[str, float]) -> None:
    """A log record was written to ``metrics.jsonl`` (every ``log.every`` steps).

    :param step: the number of completed generator steps.
    :param record: the logged values (means over the last interval), keyed like ``critic/adv``.
    :return: nothing.
    """


@hookspec
def gancore_checkpoint_saved(step: int, path: str) -> None:
    """A checkpoint was written (atomically) to ``path``.

    :param step: the number of completed generator steps.
    :param path: the checkpoint file.
    :return: nothing.
    """


@hookspec
def gancore_run_end(run_dir: str, step: int, status: str) -> None:
    """A training run ended.

    :param run_dir: the run directory.
    :param step: the number of completed generator steps.
    :param status: ``"completed"``, or ``"failed"`` when training stopped on an error.
    :return: nothing.
    """
