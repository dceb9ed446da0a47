"""Dotted keys: ``--set key=value`` parsed and applied, list items of named sections by index or by
name, nested tables merged. Torch-free and free of the config models (:mod:`gancore.config` uses it)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from gancore.errors import ConfigError
from gancore.limits import MAX_DEPTH, check_depth


def parse_value(text: str, key: str = "") -> Any:
    """A ``--set`` value: JSON where it parses, else the plain string (errors name ``key``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"--set: a value nests lists or tables deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # Python's limit on the digits of an integer (4,300)
        where = f"--set {key}" if key else "--set"
        raise ConfigError(f"{where}: {exc}".split("; use sys.")[0]) from None
    check_depth(value, "--set")
    return value


def flatten(tree: dict[str, Any], prefix: str = "", *, list_items: bool = False) -> dict[str, Any]:
    """Dotted keys of a nested dict. Lists are leaves; with ``list_items``, a list of tables is entered by
    index (``regularizers.0.weight``), as ``--set`` addresses it."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + ".", list_items=list_items))
        elif list_items and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{dotted}.{i}.", list_items=True))
        else:
            out[dotted] = value
    return out


def apply_set(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` override in place (list items by index, ``a.0.b``, or in a list
    of named sections by name, ``eval.metrics.fid.n``)."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    parts = key.split(".")
    value = parse_value(text, key)
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, ".".join(parts[: i + 1]))
            continue
        child = node.get(part)
        if isinstance(child, str) and part in ("variant", "data", "loss"):
            child = node[part] = {"name": child}
        elif not isinstance(child, dict | list):
            if _is_index(parts[i + 1]) or ".".join(parts[: i + 1]) in LIST_SECTIONS:
                raise MissingListItem(
                    f"--set {key}: {'.'.join(parts[: i + 1])} has no item {parts[i + 1]}; "
                    f"set the whole list, e.g. --set {'.'.join(parts[: i + 1])}='[...]'"
                )
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(node, list):
        index = int(_list_index(node, last, key))
        node[index] = value
    else:
        node[last] = value


#: The run config's lists of named sections (their items addressable by index or by name).
LIST_SECTIONS = frozenset({"regularizers", "eval.metrics"})


class MissingListItem(ConfigError):
    """A ``--set`` path indexes a list item that does not exist."""


def _list_index(node: list[Any], part: str, key: str) -> int:
    """A list item by index (``regularizers.0``) or, in a list of named sections, by its name
    (``eval.metrics.fid``, ``regularizers.gradient-penalty``)."""
    if not _is_index(part):
        named = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == part]
        if len(named) == 1:
            return named[0]
        names = [str(item["name"]) for item in node if isinstance(item, dict) and "name" in item]
        listed = f" (it has {', '.join(names)})" if names else ""
        raise MissingListItem(f"--set {key}: expected a list index below {len(node)} or the name of one item{listed}")
    if int(part) >= len(node):
        raise MissingListItem(f"--set {key}: expected a list index below {len(node)}")
    return int(part)


def _is_index(part: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``²`` and ``٣``, which ``int`` then refuses."""
    return part.isascii() and part.isdigit()


def _list_item(node: list[Any], part: str, key: str) -> Any:
    return node[_list_index(node, part, key)]


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursively for dicts; a named section whose name changes restarts."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "name" in value and old.get("name") not in (None, value["name"]):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- validation --------------------------------------------------------------------------------


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"data.image_size": 64}`` as the nested tables a config file holds (``{"data": {"image_size": 64}}``)."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {part} is set to a value and a table at once")
            node = child
        node[last] = copy.deepcopy(value)
    return out
