"""One phase of the schedule: autocast forward (the variant's step) -> sum of named terms
(+ regularizer penalties) -> backward (scaled under fp16) -> optimizer step -> constraints.
With ``train.accumulate = k`` the forward, penalties and backward run once per micro-batch of
``batch_size / k`` rows, each loss weighted 1/k, before the one optimizer step.

Nothing here waits for the device: losses are accumulated as tensors (:class:`StepStats`) and
read once per ``log.every`` steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gancore.errors import ConfigError, GancoreError, PluginError, TrainingError
from gancore.interfaces import Batch, Networks, StepContext, StepOutput
from gancore.kernel.build import BuiltRun
from gancore.kernel.precision import Precision, scaled_grad
from gancore.kernel.state import TrainState, Updater
from gancore.variant import CRITIC, Phase


class StepStats:
    """Sums of logged values over the current logging interval, on the device, and where each
    checked value first went non-finite (read once per interval: nothing here waits for the device)."""

    NEVER = 2**62

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, Tensor] = {}
        self.first_bad: dict[str, Tensor] = {}
        """Key -> the first step of the interval at which its value was not finite (NEVER if none)."""
        self.nonfinite = torch.zeros((), dtype=torch.bool, device=device)

    def add(self, key: str, value: Tensor, *, step: int | None = None) -> None:
        """Add ``value`` to ``key``'s sum; with ``step``, also check that it is finite."""
        value = value.detach().float()
        if key in self.sums:
            self.sums[key] += value
        else:
            self.sums[key] = value.clone()
        if step is not None:
            bad = ~torch.isfinite(value)
            self.nonfinite |= bad
            first = self.first_bad.get(key)
            if first is None:
                first = self.first_bad[key] = torch.full((), self.NEVER, dtype=torch.int64, device=self.device)
            first.masked_fill_(bad & first.eq(self.NEVER), step)

    def first_nonfinite(self) -> list[tuple[str, int]]:
        """The checked keys that went non-finite this interval with the step each did, first first
        (keys of one step in the order the iteration computed them)."""
        if not self.first_bad:
            return []
        steps = torch.stack(list(self.first_bad.values())).tolist()
        found = [(key, int(s)) for key, s in zip(self.first_bad, steps, strict=True) if s != self.NEVER]
        return sorted(found, key=lambda item: item[1])  # stable: ties keep the computing order

    def clear(self) -> None:
        self.sums.clear()
        self.first_bad.clear()


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


def _shapes(batch: Batch) -> str:
    parts = [f"{name} {list(t.shape)}" for name, t in
             (("x", batch.x), ("y", batch.y), ("x_b", batch.x_b), ("y_b", batch.y_b)) if t is not None]
    return ", ".join(parts)


def _part(value: Tensor, share: float) -> Tensor:
    """A micro-batch's share of a logged value (the value itself without accumulation)."""
    return value if share == 1.0 else value.detach() * share


def micro_batches(batch: Batch, k: int) -> list[Batch]:
    """``batch`` cut into ``k`` consecutive micro-batches of equal size (every field the same rows)."""
    if k == 1:
        return [batch]
    n = batch.x.shape[0]
    if n % k:
        raise TrainingError(f"train.accumulate: {k} micro-batches do not divide a batch of {n}")
    size = n // k

    def rows(t: Tensor | None, i: int) -> Tensor | None:
        return None if t is None else t[i * size:(i + 1) * size]

    return [Batch(x=rows(batch.x, i), y=rows(batch.y, i), x_b=rows(batch.x_b, i), y_b=rows(batch.y_b, i))
            for i in range(k)]


@dataclass
class PhaseRunner:
    """Runs phases of one run: the kernel's half of every update."""

    built: BuiltRun
    precision: Precision
    state: TrainState
    views: dict[str, Networks]
    """The networks each player's phase runs (DDP and compiled views; see the trainer)."""
    stats: StepStats
    accumulate: int = 1
    """Micro-batches per update (``train.accumulate``)."""
    mean: Callable[[Tensor], Tensor] = staticmethod(lambda t: t)
    """Averages a tensor over the processes (the distributed run's all-reduce)."""
    _stepped: set[str] = field(default_factory=set)
    """The players whose step has run once in this process (a failure before is the plugin's)."""
    _carries: list[dict] = field(default_factory=list)
    """``StepContext.carry`` of each micro-batch of the current iteration."""

    def end_iteration(self) -> None:
        """Drop what the iteration's phases left each other (and the graphs it holds)."""
        self._carries.clear()

    def run(self, phase: Phase, batch: Batch, ctx: StepContext, *, last: bool = True) -> None:
        """One update of ``phase.players``: the other players are frozen for it, but for the
        phase's ``keep_graph`` players on its ``last`` repeat (the graph a later phase uses)."""
        updaters = self.state.updaters
        kept = phase.keep_graph if last else ()
        frozen = [u for name, u in updaters.items() if name not in phase.players and name not in kept]
        for name in phase.players:
            updaters[name].optimizer.zero_grad(set_to_none=True)
        for other in frozen:  # no gradients for the players that are not being updated
            other.freeze(True)
        augment = self.state.augment
        if augment is not None:
            augment.observing = phase.player == CRITIC
        try:
            self._update(phase, [updaters[name] for name in phase.players], batch, ctx)
        finally:
            for other in frozen:
                other.freeze(False)
            if augment is not None:
                augment.observing = False
        for name in phase.players:
            self.state.updates[name] += 1
        if phase.player == CRITIC:
            critic: nn.Module = self.built.nets.get(CRITIC)
            for reg in self.built.regularizers:
                reg.after_step(critic)
            if augment is not None:
                augment.after_critic_update(self.state.critic_steps, self.mean)

    def _forward(self, phase: Phase, batch: Batch, ctx: StepContext) -> StepOutput:
        variant = self.built.variant
        try:
            with self.precision.autocast():
                out = phase.step(self.views[phase.player], batch, ctx)
        except ConfigError as exc:  # e.g. a loss that needs what this variant's step does not give
            raise ConfigError(f"variant {variant.name!r} with loss {type(variant.loss).name!r}: {exc}") from None
        except (RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
            if phase.player in self._stepped:
                raise
            message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PluginError(f"variant {variant.name!r}: its {phase.player} step failed on the first batch "
                              f"({_shapes(batch)}): {type(exc).__name__}: {message} "
                              "(the traceback: --debug)") from exc
        self._stepped.add(phase.player)
        if not isinstance(out, StepOutput):
            raise TrainingError(f"the {phase.player} phase's step returned {type(out).__name__}, expected StepOutput")
        return out

    def _update(self, phase: Phase, updaters: list[Updater], batch: Batch, ctx: StepContext) -> None:
        # players updated together share one backward, so the phase's own scaler scales it for all
        scaler = updaters[0].scaler
        parts = micro_batches(batch, self.accumulate)
        share = 1.0 / len(parts)  # each micro-batch's mean loss weighs 1/k: the sum is the batch's mean
        while len(self._carries) < len(parts):
            self._carries.append({})
        for i, part in enumerate(parts):
            ctx.carry = self._carries[i]
            out = self._forward(phase, part, ctx)
            loss = self._add_terms(phase.player, out, ctx.step, share)
            penalised: list[str] = []
            if phase.player == CRITIC and out.penalties:
                with self._penalty_view():
                    penalty, penalised = self._penalties(out, scaler, ctx.step, share)
                loss = loss + penalty
            try:
                scaler.scale(loss * share if share != 1.0 else loss).backward()
            except RuntimeError as exc:
                if penalised:
                    raise double_backward_error(exc, penalised) from exc
                raise
        for updater in updaters:
            scaler.step(updater.optimizer)
        scaler.update()

    @contextmanager
    def _penalty_view(self) -> Iterator[None]:
        """With ``augment.penalties = false`` the penalties take the critic on the images as they are."""
        augment = self.state.augment
        if augment is None:
            yield
            return
        augment.active = bool(getattr(augment.augment.config, "penalties", True))
        try:
            yield
        finally:
            augment.active = True

    def _add_terms(self, player: str, out: StepOutput, step: int, share: float = 1.0) -> Tensor:
        if not out.terms:
            raise TrainingError(f"the variant returned no loss terms for the {player}")
        total = sum(out.terms.values())
        assert isinstance(total, Tensor)
        for name, value in out.terms.items():
            self.stats.add(f"{player}/{name}", _part(value, share), step=step)
        if len(out.terms) > 1:
            self.stats.add(f"{player}/total", _part(total, share), step=step)
        for name, value in out.stats.items():
            self.stats.add(f"{player}/{name}", _part(value, share))
        return total

    def _penalties(self, out: StepOutput, scaler: torch.amp.GradScaler,
                   step: int, share: float = 1.0) -> tuple[Tensor | float, list[str]]:
        critic_updates = self.state.critic_steps
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
                key = f"{CRITIC}/{reg.name}" + (f"_{inputs.name}" if len(out.penalties) > 1 else "")
                if scaler.is_enabled():
                    # Overflowing scaled fp16 gradients give inf here: GradScaler skips that
                    # step and lowers its scale. Count such steps rather than log the inf.
                    finite = torch.isfinite(value.detach())
                    self.stats.add(f"{key}_overflow", _part((~finite).float(), share))
                    self.stats.add(key, _part(torch.where(finite, value.detach(), 0.0), share))
                else:
                    self.stats.add(key, _part(value, share), step=step)
                total = total + reg.weight * reg.every * value
                applied.append(reg.name)
        return total, applied
