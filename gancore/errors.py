"""Exceptions raised for users' mistakes and training failures.

The CLI renders every :class:`GancoreError` as one line on stderr; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class GancoreError(Exception):
    """Base class of every error gancore reports to a user."""

    exit_code: int = 1


class ConfigError(GancoreError):
    """A configuration key, value or name is wrong (exit code 2)."""

    exit_code = 2


class PluginError(GancoreError):
    """A plugin is broken, duplicated, or asked for but not installed (exit code 2)."""

    exit_code = 2


class CheckpointError(GancoreError):
    """A checkpoint file is missing, truncated, foreign or does not fit the run (exit code 2)."""

    exit_code = 2


class TrainingError(GancoreError):
    """Training stopped: a non-finite loss, or a failure inside a step (exit code 1)."""

    exit_code = 1
