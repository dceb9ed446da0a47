"""One phase of the schedule: autocast forward (the variant's step) -> sum of named terms
(+ regularizer penalties) -> backward (scaled under fp16) -> optimizer step -> constraints.

Nothing here waits for the device: losses are accumulated as tensors (:class:`StepStats`) and
read once per ``log.every`` steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gancore.errors import ConfigError, GancoreError, TrainingError
from gancore.interfaces import Batch, Networks, StepContext, StepOutput
from gancore.kernel.build import BuiltRun
from gancore.kernel.precision import Precision, scaled_grad
from gancore.variant import Phase


class Updater:
    """What updates one player's network: its optimizer, its grad scaler, the parameters it trains."""

    def __init__(self, player: str, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
        self.player = player
        self.optimizer = optimizer
        self.scaler = scaler
        # Only what the optimizer trains is toggled: parameters frozen on purpose stay frozen.
        self.trainable = [p for group in optimizer.param_groups for p in group["params"]]

    def freeze(self, frozen: bool) -> None:
        for p in self.trainable:
            p.requires_grad_(not frozen)


class StepStats:
    """Sums of logged values over the current interval, on the device, and a non-finite flag."""

    def __init__(self, device: torch.device) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)

    def add(self, key: str, value: Tensor) -> None:
        value = value.detach().float()
        if key in self.sums:
            self.sums[key] += value
        else:
            self.sums[key] = value.clone()

    def flag(self, value: Tensor) -> None:
        self.nonfinite |= ~torch.isfinite(value.detach())

    def clear(self) -> None:
        self.sums.clear()
        self.count = 0


_NO_DERIVATIVE = re.compile(r"derivative for '?([\w:.]+)'? is not implemented")


def double_backward_error(exc: RuntimeError, penalties: list[str]) -> GancoreError:
    """Turn PyTorch's failure to differentiate twice into an error naming the operation."""
    message = str(exc)
    names = ", ".join(sorted(set(penalties)))
    found = _NO_DERIVATIVE.search(message)
    if found:
        op = found.group(1).removesuffix("_backward")
        return TrainingError(
            f"the {names} penalty needs the critic's double backward, "
            f"but the critic uses '{op}', which has no double-backward implementation in PyTorch; "
            "replace that operation in the critic or drop the penalty"
        )
    if "once_differentiable" in message:
        return TrainingError(
            f"the {names} penalty needs the critic's double backward, "
            "but the critic uses a custom autograd Function marked @once_differentiable"
        )
    return TrainingError(f"backward through the {', '.join(penalties)} penalty failed: {message}")


@dataclass
class PhaseRunner:
    """Runs phases of one run: the kernel's half of every update."""

    built: BuiltRun
    precision: Precision
    updaters: dict[str, Updater]
    views: dict[str, Networks]
    """The networks each player's phase runs (DDP and compiled views; see the trainer)."""
    stats: StepStats

    def run(self, phase: Phase, batch: Batch, ctx: StepContext, critic_updates: int) -> None:
        """One update of ``phase.player``."""
        updater = self.updaters[phase.player]
        updater.optimizer.zero_grad(set_to_none=True)
        others = [u for name, u in self.updaters.items() if name != phase.player]
        for other in others:  # no gradients for the players that are not being updated
            other.freeze(True)
        try:
            with self.precision.autocast():
                out = phase.step(self.views[phase.player], batch, ctx)
        except ConfigError as exc:  # e.g. a loss that needs what this variant's step does not give
            raise ConfigError(f"variant {self.built.variant.name!r} with loss "
                              f"{type(self.built.variant.loss).name!r}: {exc}") from None
        if not isinstance(out, StepOutput):
            raise TrainingError(f"the {phase.player} phase's step returned {type(out).__name__}, expected StepOutput")
        loss = self._add_terms(phase.player, out)
        self.stats.flag(loss)
        penalised: list[str] = []
        if phase.player == "critic" and out.penalties:
            penalty, penalised = self._penalties(out, updater.scaler, critic_updates)
            loss = loss + penalty
        try:
            updater.scaler.scale(loss).backward()
        except RuntimeError as exc:
            if penalised:
                raise double_backward_error(exc, penalised) from exc
            raise
        updater.scaler.step(updater.optimizer)
        updater.scaler.update()
        for other in others:
            other.freeze(False)
        if phase.player == "critic":
            critic: nn.Module = self.built.nets.get("critic")
            for reg in self.built.regularizers:
                reg.after_step(critic)

    def _add_terms(self, player: str, out: StepOutput) -> Tensor:
        if not out.terms:
            raise TrainingError(f"the variant returned no loss terms for the {player}")
        total = sum(out.terms.values())
        assert isinstance(total, Tensor)
        for name, value in out.terms.items():
            self.stats.add(f"{player}/{name}", value)
        if len(out.terms) > 1:
            self.stats.add(f"{player}/total", total)
        for name, value in out.stats.items():
            self.stats.add(f"{player}/{name}", value)
        return total

    def _penalties(self, out: StepOutput, scaler: torch.amp.GradScaler,
                   critic_updates: int) -> tuple[Tensor | float, list[str]]:
        total: Tensor | float = 0.0
        applied: list[str] = []
        grad = scaled_grad(scaler)
        for reg in self.built.regularizers:
            if critic_updates % reg.every != 0:
                continue
            for inputs in out.penalties:
                with self.precision.autocast():
                    value = reg.penalty(inputs, grad)
                if value is None:
                    continue
                # One critic: critic/<penalty>; several (CycleGAN's D_A, D_B): critic/<penalty>_<name>.
                key = f"critic/{reg.name}" + (f"_{inputs.name}" if len(out.penalties) > 1 else "")
                if scaler.is_enabled():
                    # Overflowing scaled fp16 gradients give inf here: GradScaler skips that
                    # step and lowers its scale. Count such steps rather than log the inf.
                    finite = torch.isfinite(value.detach())
                    self.stats.add(f"{key}_overflow", (~finite).float())
                    self.stats.add(key, torch.where(finite, value.detach(), 0.0))
                else:
                    self.stats.flag(value)
                    self.stats.add(key, value)
                total = total + reg.weight * reg.every * value
                applied.append(reg.name)
        return total, applied
