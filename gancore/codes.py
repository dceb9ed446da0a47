"""Structured latent codes: inputs a generator takes beside its noise (InfoGAN's c), as named tensors.

A generator that takes codes lists them in its ``codes`` attribute (a tuple of :class:`Code`) and
accepts them as ``forward(z, y=None, codes=None)``, ``codes`` a dict name -> tensor. The kernel draws
them per batch with the noise (:meth:`gancore.StepContext.codes`, from the checkpointed latent stream,
the same under torch.distributed as in one process), a checkpoint records their specification
(metadata ``codes``), and :meth:`gancore.Variant.sample` draws them, or takes some of them fixed
(``gancore sample --code K`` fixes the first categorical code). They never hide in the noise vector's
layout: ``sample_latent`` draws the noise alone.

A categorical code of ``size`` K is ``[n]`` class indices, uniform over 0..K-1; a uniform code of
``size`` d is ``[n, d]`` floats uniform in ``[low, high]``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from gancore.lazy import lazy_module

if TYPE_CHECKING:
    from torch import Tensor, nn

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")

__all__ = ["Code", "codes_from_json", "codes_of", "codes_to_json", "draw_codes", "first_categorical"]

CodeKind = Literal["categorical", "uniform"]


@dataclass(frozen=True)
class Code:
    """One named code a generator takes: ``categorical`` (``size`` classes) or ``uniform`` (``size``
    dimensions in ``[low, high]``)."""

    name: str
    kind: CodeKind
    size: int
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("categorical", "uniform"):
            raise ValueError(f"Code({self.name!r}): kind must be categorical or uniform, got {self.kind!r}")
        if not self.name.isidentifier() or self.size < 1 or (self.kind == "categorical" and self.size < 2):
            raise ValueError(f"Code({self.name!r}): a code needs an identifier name and a size of at least 1 "
                             "(2 for a categorical code)")
        if self.kind == "uniform" and not self.low < self.high:
            raise ValueError(f"Code({self.name!r}): low must be below high")

    @property
    def width(self) -> int:
        """How many inputs the code takes when encoded (one-hot for a categorical code)."""
        return self.size

    def draw(self, n: int, *, generator: torch.Generator | None, device: torch.device | str | None) -> Tensor:
        """``n`` draws: ``[n]`` int64 indices, or ``[n, size]`` float32 in ``[low, high]``."""
        if self.kind == "categorical":
            return torch.randint(self.size, (n,), generator=generator, device=device)
        u = torch.rand(n, self.size, generator=generator, device=device)
        return u.mul_(self.high - self.low).add_(self.low)

    def encode(self, value: Tensor, dtype: torch.dtype) -> Tensor:
        """The code as generator input ``[n, size]``: one-hot for a categorical code."""
        if self.kind == "categorical":
            return F.one_hot(value.long(), self.size).to(dtype)
        return value.to(dtype)

    def check(self, value: Tensor, n: int, what: str) -> Tensor:
        """``value`` validated as ``n`` values of this code (ValueError naming ``what``)."""
        if self.kind == "categorical":
            if value.shape != (n,) or value.dtype.is_floating_point:
                raise ValueError(f"{what}: code {self.name!r} takes {n} class indices, got a tensor of shape "
                                 f"{list(value.shape)} ({value.dtype})")
            if len(value) and (int(value.min()) < 0 or int(value.max()) >= self.size):
                raise ValueError(f"{what}: code {self.name!r} has classes 0..{self.size - 1}, "
                                 f"got {int(value.min())}..{int(value.max())}")
            return value.long()
        if value.shape != (n, self.size):
            raise ValueError(f"{what}: code {self.name!r} takes [{n}, {self.size}] values, got {list(value.shape)}")
        return value.float()


def codes_of(generator: nn.Module) -> tuple[Code, ...]:
    """The codes ``generator`` takes (``()`` for a generator without any)."""
    codes = getattr(generator, "codes", ())
    return tuple(codes) if isinstance(codes, Sequence) else ()


def first_categorical(codes: Sequence[Code]) -> Code | None:
    """The first categorical code (the one ``gancore sample --code`` fixes), or None."""
    return next((c for c in codes if c.kind == "categorical"), None)


def draw_codes(codes: Sequence[Code], n: int, *, generator: torch.Generator | None, device: torch.device | str | None,
               fixed: Mapping[str, Tensor] | None = None) -> dict[str, Tensor]:
    """One value per code for ``n`` samples, in order; ``fixed`` values (validated) replace draws.

    Every code is drawn, fixed or not, so the stream moves the same whichever codes are fixed."""
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - {c.name for c in codes})
    if unknown:
        raise ValueError(f"codes: this generator has no code {', '.join(map(repr, unknown))} "
                         f"(it takes {', '.join(c.name for c in codes) or 'none'})")
    out = {}
    for code in codes:
        value = code.draw(n, generator=generator, device=device)
        if code.name in fixed:
            value = code.check(torch.as_tensor(fixed[code.name]), n, "codes").to(value.device)
        out[code.name] = value
    return out


def codes_to_json(codes: Sequence[Code]) -> str:
    """The codes' specification as the JSON a checkpoint's ``codes`` metadata holds."""
    return json.dumps([asdict(c) for c in codes])


def codes_from_json(text: str) -> tuple[Code, ...]:
    """The codes from :func:`codes_to_json`'s string; ValueError names what is wrong."""
    try:
        raw = json.loads(text)
        if not isinstance(raw, list):
            raise TypeError(f"expected a JSON list, got {type(raw).__name__}")
        return tuple(Code(str(r["name"]), r["kind"], int(r["size"]), float(r.get("low", -1.0)),
                          float(r.get("high", 1.0))) for r in raw)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"codes is not a list of codes ({type(exc).__name__}: {exc})") from None
