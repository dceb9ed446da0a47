"""Config files: TOML, JSON and YAML, read into plain dicts (no objects built: YAML's safe loader)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from gancore.errors import ConfigError
from gancore.limits import MAX_DEPTH, check_depth

__all__ = ["load_file"]


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML, JSON or YAML config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no such file {path}")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
            check_depth(data, f"--config: {path}")
            return data
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ConfigError(f"--config: {path} must hold a JSON object")
            check_depth(data, f"--config: {path}")
            return data
        if path.suffix in (".yaml", ".yml"):
            return _load_yaml(path)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"--config: {path} nests tables or lists deeper than {MAX_DEPTH} levels") from None
    raise ConfigError(f"--config: {path} must end in .toml, .json, .yaml or .yml")


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())  # plain data only: safe_load builds no objects
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"--config: {path} is not valid YAML: {first[0] if first else exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of settings, got {type(data).__name__}")
    check_depth(data, f"--config: {path}")
    return data
