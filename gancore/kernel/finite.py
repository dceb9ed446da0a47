"""Non-finite values: the error naming the term that went first, and whether a state is fit to
checkpoint (every floating tensor finite, and the generator's output on a probe)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from gancore.errors import PluginError, TrainingError
from gancore.interfaces import Batch
from gancore.kernel.build import BuiltRun
from gancore.kernel.drawing import evaluating

if TYPE_CHECKING:
    from gancore.kernel.phases import StepStats
    from gancore.variant import Variant


def nonfinite_loss(stats: StepStats, names: list[str], variant: Variant, step: int,
                   good: Path | None) -> TrainingError:
    """The error of a run whose logged values went non-finite: which (``names``: the interval's
    non-finite means), the term that went first and in which step, and the plugins."""
    first = stats.first_nonfinite()
    if first:
        key, at = first[0]
        names = [key] + [k for k in names if k != key]
        where = f" in {', '.join(names)} ({key} first, in step {at + 1})"
    else:
        where = f" in {', '.join(names)}" if names else ""
    return TrainingError(f"non-finite loss{where}; variant {variant.name!r} with loss {type(variant.loss).name!r}; "
                         f"training stopped before step {step}. Last good checkpoint: {good}")


def preview_failure(exc: BaseException) -> str:
    """One line on a variant's failing ``preview``."""
    message = (str(exc).strip().splitlines() or [""])[0]
    return f"preview() failed: {type(exc).__name__}" + (f": {message}" if message else "")


def nonfinite_state(tensors: dict[str, Tensor], built: BuiltRun, batch: Batch, device: torch.device,
                    seed: int) -> list[str]:
    """What is not finite in a state about to be checkpointed: the floating tensors' keys (weights,
    EMA, optimizer moments), else "the generator's output on a probe batch" when the variant's
    preview on 2 inputs of ``batch`` is not finite; empty when all is well."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        return bad

    def head(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[:2]

    probe = Batch(x=batch.x[:2], y=head(batch.y), x_b=head(batch.x_b), y_b=head(batch.y_b))
    variant = built.variant
    try:
        gen = variant.translator(built.networks())
        with evaluating(gen, seed=seed) as g:
            out, _ = variant.preview(g, probe, 2, rng=torch.Generator(device=device).manual_seed(0), device=device)
    except Exception as exc:  # the variant's code: blame it, in one line
        raise PluginError(f"variant {variant.name!r}: {preview_failure(exc)} (preview() runs on a 2-input probe "
                          "batch before every checkpoint: docs/plugins.md)") from exc
    return [] if bool(torch.isfinite(out).all()) else ["the generator's output on a probe batch"]
