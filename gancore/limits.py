"""Limits on what users hand in, shared by the config reader and the checks at the boundary."""

from __future__ import annotations

from typing import Any

from gancore.errors import ConfigError

#: The most classes a labelled source may have (a label embedding's rows: a bigger label is damage).
MAX_CLASSES = 100_000

#: How deep a config's tables and lists may nest (gancore's own go 4 deep).
MAX_DEPTH = 32


def check_depth(value: Any, where: str, depth: int = 0) -> None:
    """A ConfigError naming ``where`` when ``value`` nests deeper than :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nests tables or lists deeper than {MAX_DEPTH} levels")
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        check_depth(child, where, depth + 1)
