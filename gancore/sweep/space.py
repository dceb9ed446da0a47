"""``--param KEY=SPACE``: the searched keys and their spaces, as Optuna distributions."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from gancore.errors import ConfigError

_SPACE = re.compile(r"^\s*(choice|int|float|loguniform)\s*\((.*)\)\s*$", re.S)
SPACES = "choice(a,b,...), int(lo,hi), float(lo,hi) or loguniform(lo,hi)"


def _value(text: str) -> Any:
    """A JSON value when it parses as one (numbers, true/false, null, quoted strings), else the text."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Param:
    """One searched key: ``kind`` is choice/int/float/loguniform; ``values`` the choices or (lo, hi)."""

    key: str
    kind: str
    values: tuple[Any, ...]

    @property
    def spec(self) -> str:
        return f"{self.kind}({', '.join(json.dumps(v) for v in self.values)})"

    def distribution(self) -> Any:
        import optuna

        if self.kind == "choice":
            return optuna.distributions.CategoricalDistribution(list(self.values))
        lo, hi = self.values
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(lo), int(hi))
        return optuna.distributions.FloatDistribution(float(lo), float(hi), log=self.kind == "loguniform")

    def corners(self) -> list[Any]:
        """The values that bound the space: each choice, or both ends (checked against the config)."""
        return list(self.values)

    def grid(self) -> list[Any]:
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.values[0]), int(self.values[1]) + 1))
        raise ConfigError(f"--param {self.key}: --sampler grid takes choice(...) and int(...) spaces, "
                          f"not {self.kind}(...)")


def parse_param(text: str) -> Param:
    """``KEY=SPACE`` -> :class:`Param`; a one-line error naming the key for anything malformed."""
    key, sep, space = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--param {text!r}: expected KEY=SPACE, SPACE one of {SPACES}")
    found = _SPACE.match(space)
    if not found:
        raise ConfigError(f"--param {key}: {space.strip()!r} is not a space; expected {SPACES}")
    kind, inner = found.group(1), found.group(2)
    parts = [p for p in (s.strip() for s in inner.split(","))]
    if kind == "choice":
        if not inner.strip() or any(not p for p in parts):
            raise ConfigError(f"--param {key}: choice() needs at least one value")
        values = tuple(_value(p) for p in parts)
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"--param {key}: choice({inner.strip()}) lists a value twice")
        return Param(key, kind, values)
    if len(parts) != 2:
        raise ConfigError(f"--param {key}: {kind}(lo, hi) takes two numbers, got {inner.strip()!r}")
    try:
        lo, hi = (int(p) for p in parts) if kind == "int" else (float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"--param {key}: {kind}({inner.strip()}) needs {'integers' if kind == 'int' else 'numbers'}"
                          ) from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"--param {key}: {kind}({inner.strip()}) needs finite ends")
    if lo >= hi:
        raise ConfigError(f"--param {key}: {kind}({inner.strip()}) is an empty or inverted range "
                          "(the low end must be below the high end)")
    if kind == "loguniform" and lo <= 0:
        raise ConfigError(f"--param {key}: loguniform({inner.strip()}) needs a positive low end")
    return Param(key, kind, (lo, hi))


def parse_params(texts: tuple[str, ...] | list[str]) -> list[Param]:
    params = [parse_param(t) for t in texts]
    keys = [p.key for p in params]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"--param {twice[0]}: given twice")
    return params


def assignment(key: str, value: Any) -> str:
    """``key=value`` as ``--set`` takes it (JSON: a string stays a string)."""
    return f"{key}={json.dumps(value)}"
