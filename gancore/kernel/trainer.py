"""The training loop: one loop for every variant.

Each iteration runs the variant's schedule (:meth:`gancore.Variant.phases`: by default
``n_critic`` critic updates, then one generator update; :mod:`gancore.kernel.phases` runs each),
updates the EMA, and then, when due, logs, fires ``gancore_step_end`` (sample grids and
evaluation are plugins on it: :mod:`gancore.features`) and checkpoints the state
(:mod:`gancore.kernel.state`).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancore.config import RunConfig
from gancore.data import TensorData
from gancore.errors import CheckpointError, ConfigError, TrainingError, WriteError
from gancore.files import remove_temporaries, write_text_atomic
from gancore.interfaces import Batch, Networks, StepContext
from gancore.kernel import checkpoint as ck
from gancore.kernel.build import BuiltRun, build_run, ema_update, make_optimizer
from gancore.kernel.distributed import from_env, per_network, wrap
from gancore.kernel.drawing import nonfinite_state
from gancore.kernel.lock import RunLock
from gancore.kernel.phases import PhaseRunner, StepStats, Updater
from gancore.kernel.precision import Precision, resolve_device, resolve_precision
from gancore.kernel.run import Run
from gancore.kernel.sampler import BatchSampler
from gancore.kernel.state import TrainState, process_seeds
from gancore.plugins import PluginHost


def fixed_batch(data: TensorData, n: int, device: torch.device) -> Batch:
    """The first ``n`` samples of each domain: the inputs of every progress grid."""

    def head(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else TensorData.decoded(t[:n]).to(device)

    def images(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else data.centred(t[:n]).to(device)

    return Batch(x=images(data.x), y=head(data.y), x_b=images(data.x_b), y_b=head(data.y_b))


@dataclass
class TrainResult:
    step: int
    seconds: float
    checkpoint: Path | None
    samples: Path | None


def compiled(module: nn.Module) -> nn.Module:
    """``torch.compile`` each network of a player; attribute access (``sample_latent``) passes
    through to the original module."""
    return per_network(module, torch.compile)


def _silent(_: str) -> None:
    """The echo of every process but the main one."""


class Trainer:
    """Trains one run into ``run_dir`` (fresh, or resumed from its latest checkpoint)."""

    def __init__(self, host: PluginHost, cfg: RunConfig, run_dir: str | Path, *, resume: bool = False,
                 echo: Callable[[str], None] = print) -> None:
        self.host, self.cfg, self.echo = host, cfg, echo
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.dist = from_env(cfg.train.device)
        if not self.dist.main:
            self.echo = _silent
        self.lock = RunLock(self.run_dir)  # one training process per run directory, for the run's life
        if self.dist.main:
            self.lock.acquire()
        try:
            self._setup(resume)
        except BaseException:
            self.lock.release(remove_if_unused=True)  # a run that fails to start leaves nothing behind
            raise

    def _setup(self, resume: bool) -> None:
        cfg, host = self.cfg, self.host
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.precision = Precision(resolve_precision(cfg.train.precision, self.device), self.device)
        self._check_dir(resume)
        # a run killed before its first checkpoint resumes from step 0 (a fresh start in its own directory)
        from_scratch = resume and not ck.list_checkpoints(self.ckpt_dir)
        resume = resume and not from_scratch
        data: TensorData = cfg.data_cls(cfg.data).load()
        self.spec = data.spec
        self.built: BuiltRun = build_run(cfg, data.spec, self.device, data=None if resume else data)
        if cfg.train.init_from is not None and not resume:
            from gancore.kernel.init_from import init_from

            init_from(self.built, cfg.train.init_from, strict=cfg.train.init_strict, echo=self.echo)
        self.phases = self.built.variant.phases(cfg.train.n_critic)
        self._check_eval_metrics()
        players = self.built.nets.names()
        unknown = sorted({p.player for p in self.phases} - set(players))
        if unknown:
            raise ConfigError(f"variant {cfg.variant_cls.name!r}: its phases train {', '.join(unknown)}, "
                              f"which its networks lack (it has {', '.join(players)})")
        for name in cfg.optim.players():
            if name not in players and name != "critic":
                raise ConfigError(f"optim.{name}: variant {cfg.variant_cls.name!r} has no player {name!r} "
                                  f"(its players: {', '.join(players)})")
        trained = [name for name in players if any(p.player == name for p in self.phases)]
        self.updaters = {name: Updater(name, make_optimizer(cfg.optim.for_player(name), self.built.nets.get(name),
                                                            cfg.train.fused_optimizer),
                                       self.precision.scaler()) for name in trained}
        sampler = BatchSampler(data, cfg.train.batch_size, self.device, cfg.train.seed,
                               rank=self.dist.rank, world_size=self.dist.world_size)
        sampler.channels_last = self.built.channels_last
        # rng: per process (the same as shared_rng in one process); shared_rng: the same everywhere
        shared_rng = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 1)
        rng = shared_rng
        if self.dist.enabled:
            own, global_seed = process_seeds(cfg.train.seed, self.dist.rank)
            rng = torch.Generator(device=self.device).manual_seed(own)
            torch.manual_seed(global_seed)  # distinct penalty draws per process
        self.state = TrainState(self.built, {n: u.optimizer for n, u in self.updaters.items()},
                                {n: u.scaler for n, u in self.updaters.items()}, sampler, shared_rng, rng,
                                self.device)
        self.stats = StepStats(self.device)
        self.runner = PhaseRunner(self.built, self.precision, self.updaters, self._views(), self.stats)
        self._scheduled = any(cfg.optim.for_player(p).schedule != "constant" for p in self.updaters)
        self.run_info = Run(run_dir=self.run_dir, config=cfg, built=self.built, spec=self.spec, device=self.device,
                            total_steps=cfg.train.steps, preview_batch=fixed_batch(data, cfg.log.samples, self.device),
                            landmarks=data.landmarks, host=host, hooks=host.lifecycle(self.echo), state=self.state,
                            echo=self.echo)
        if resume:
            self._resume()
        elif from_scratch:
            self.run_info.resumed_from = 0  # drops the killed attempt's records from metrics.jsonl
            self.echo(f"resume: {self.ckpt_dir} holds no checkpoint yet; starting the run from step 0")
        self._make_dir()
        self.dist.barrier()

    # -- names the tests, benchmarks and plugins read ---------------------------------------
    @property
    def step(self) -> int:
        return self.state.step

    @property
    def sampler(self) -> BatchSampler:
        return self.state.sampler

    @property
    def last_checkpoint(self) -> Path | None:
        return self.run_info.last_checkpoint

    def _views(self) -> dict[str, Networks]:
        """The networks each player's phase runs: under torch.distributed the network being
        updated is wrapped in DDP (the others run raw: frozen, nothing to synchronise); with
        ``train.compile`` every network is compiled but a critic whose penalty needs its double
        backward. Checkpoints and EMA always use the raw modules."""
        nets = self.built.nets
        double_backward = any(r.needs_double_backward for r in self.built.regularizers)
        raw: dict[str, nn.Module] = dict(nets.items())
        updated = dict(raw)
        if self.dist.enabled:
            updated = {name: wrap(net, self.device) for name, net in raw.items()}
        if self.cfg.train.compile:
            eager = {"critic"} if double_backward else set()
            for name in raw:
                if name in eager:
                    continue
                was_raw = updated[name] is raw[name]
                updated[name] = compiled(updated[name])
                raw[name] = updated[name] if was_raw else compiled(raw[name])
        return {player: nets.replace(**{**raw, player: updated[player]}) for player in self.updaters}

    def _check_eval_metrics(self) -> None:
        """``eval.metrics`` that do not apply to this run's task are an error before training starts
        (and before the run directory is written), not a warning at the first evaluation."""
        from gancore.metrics import task_of

        task = task_of(self.built.variant)
        for i, (cls, _) in enumerate(self.cfg.eval_metrics):
            if task not in cls.tasks:
                raise ConfigError(f"eval.metrics.{i}: metric {cls.name!r} applies to {', '.join(cls.tasks)} runs, "
                                  f"not to this {task} run")

    # -- run directory ---------------------------------------------------------------------
    def _check_dir(self, resume: bool) -> None:
        has_run = (self.run_dir / "config.json").exists() or bool(ck.list_checkpoints(self.ckpt_dir))
        if resume and not has_run:
            raise ConfigError(f"--resume: {self.run_dir} holds no run to resume")
        if not resume and has_run:
            raise ConfigError(
                f"--out: {self.run_dir} already holds a run; pass --resume to continue it or choose another --out"
            )

    def _make_dir(self) -> None:
        """Create the run directory once everything was built (a build error leaves nothing behind)."""
        import json

        self.dist.barrier()  # every process has checked before the main one creates anything
        if self.dist.main:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)
            # temporary files of a process killed mid-write (we hold the lock: no other writer is alive)
            for folder in (self.run_dir, self.ckpt_dir):
                remove_temporaries(folder)
            write_text_atomic(json.dumps(self.cfg.to_dict(), indent=2) + "\n", self.run_dir / "config.json")

    # -- the schedule ----------------------------------------------------------------------
    def _context(self) -> StepContext:
        state = self.state
        return StepContext(step=state.step, device=self.device, rng=state.rng, rank=self.dist.rank,
                           world_size=self.dist.world_size, shared_rng=state.shared_rng)

    def _set_learning_rates(self) -> None:
        for name, updater in self.updaters.items():
            lr = self.cfg.optim.for_player(name).lr_at(self.state.step, self.cfg.train.steps)
            for group in updater.optimizer.param_groups:
                group["lr"] = lr

    def _iteration(self) -> None:
        state = self.state
        if self._scheduled:
            self._set_learning_rates()
        for phase in self.phases:
            if state.step % phase.every:
                continue
            for _ in range(phase.repeat):
                self.runner.run(phase, state.sampler.next(), self._context(), state.critic_steps)
                state.updates[phase.player] += 1
        if self.built.ema is not None:
            ema_update(self.built.ema, self.built.nets.generator, float(self.cfg.train.ema))
        state.step += 1
        self.stats.count += 1

    # -- the loop --------------------------------------------------------------------------
    def _hook(self, name: str, **kwargs: Any) -> None:
        if self.dist.main:
            self.run_info.hooks.call(name, run=self.run_info, **kwargs)

    def run(self) -> TrainResult:
        cfg = self.cfg
        total = cfg.train.steps
        self._hook("gancore_run_start", run_dir=str(self.run_dir), config=cfg.to_dict())
        if self.built.init_reports:
            self._hook("gancore_initialized", reports=self.built.init_reports)
        self.echo(
            f"training {cfg.variant_cls.name} on {cfg.data_cls.name} ({self.device}, {self.precision.name}"
            + (f", {self.dist.world_size} processes x batch {cfg.train.batch_size}" if self.dist.enabled else "")
            + f") for {total} steps -> {self.run_dir}"
        )
        bar = None
        if cfg.log.progress and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, unit="it", dynamic_ncols=True, leave=True)
        started = time.perf_counter()
        status = "failed"
        try:
            self._interval_start = time.perf_counter()
            self.advance(total - self.step, bar)
            status = "completed"
        finally:
            if bar is not None:
                bar.close()
            self.sampler.close()
            self._hook("gancore_run_end", run_dir=str(self.run_dir), step=self.step, status=status)
            if self.dist.enabled and status == "completed":
                self._end_distributed()
            self.lock.release()
        return TrainResult(self.step, time.perf_counter() - started, self.run_info.last_checkpoint,
                           self.run_info.last_samples)

    def _end_distributed(self) -> None:
        """Release the DDP wrappers (their reducers hold the process group and its gloo/NCCL
        work) before every process ends the group together; a group torn down while they are
        still alive, or left to interpreter shutdown, can abort a process after training ended."""
        self.runner.views = {}
        gc.collect()
        self.dist.barrier()
        torch.distributed.destroy_process_group()

    def advance(self, steps: int, bar: Any = None) -> None:
        """Train ``steps`` iterations with the run's logging, side features and checkpoints (all
        of them also at ``train.steps``). :meth:`run` is this plus the run's start and end; the
        speed benchmark calls it in blocks."""
        cfg = self.cfg
        if not hasattr(self, "_interval_start"):
            self._interval_start = time.perf_counter()
        for _ in range(steps):
            self._iteration()
            if bar is not None:
                bar.update(1)
            last = self.run_info.is_last
            if self.step % cfg.log.every == 0 or last:
                record = self._log()
                if bar is not None:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if "/" in k}, refresh=False)
            self._hook("gancore_step_end", step=self.step)
            if (cfg.log.checkpoint_every and self.step % cfg.log.checkpoint_every == 0) or last:
                self._checkpoint()

    def _check_finite(self, names: list[str] | None = None) -> None:
        if bool(self.stats.nonfinite):
            where = f" in {', '.join(names)}" if names else ""
            good = self.run_info.last_checkpoint or "none written yet"
            raise TrainingError(
                f"non-finite loss{where} before step {self.step}; training stopped. Last good checkpoint: {good}"
            )

    def _log(self) -> dict[str, float]:
        stats = self.stats
        keys = list(stats.sums)
        means = torch.stack([stats.sums[k] for k in keys]).div_(max(stats.count, 1))
        values = self.dist.all_reduce_mean(means).tolist()  # averaged over processes (one call per log)
        stats.nonfinite = self.dist.any(stats.nonfinite)
        now = time.perf_counter()
        record: dict[str, Any] = {"step": self.step}
        record.update({k: float(v) for k, v in zip(keys, values, strict=True)})
        record["it_per_s"] = stats.count / max(now - self._interval_start, 1e-9)
        self._interval_start = now
        stats.clear()
        self._check_finite([k for k, v in record.items() if not math.isfinite(v)])
        if self.dist.main:
            self.run_info.log(record)
        return record

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.stats.nonfinite = self.dist.any(self.stats.nonfinite)
        self._check_finite()
        path = self.ckpt_dir / ck.checkpoint_name(self.step)
        if not self.dist.main:  # the main process writes; the others know its path
            self.run_info.last_checkpoint = path
            return
        tensors, meta = self.state.checkpoint(self.cfg.to_dict(), self.precision.name)
        self._check_state_finite(tensors)
        try:
            ck.write_atomic(tensors, meta, path)
        except WriteError as exc:
            good = self.run_info.last_checkpoint or "none written yet"
            raise WriteError(f"{exc}; training stopped at step {self.step}. Last good checkpoint: {good}") from None
        self.run_info.last_checkpoint = path
        for _, old in ck.list_checkpoints(self.ckpt_dir)[: -self.cfg.log.keep_checkpoints]:
            old.unlink()
        self._hook("gancore_checkpoint_saved", step=self.step, path=str(path))

    def _check_state_finite(self, tensors: dict[str, torch.Tensor]) -> None:
        """A checkpoint is written only of a finite state (see :func:`nonfinite_state`): the last good
        checkpoint really is good (fp16 at a huge rate can blow up the weights while the losses of
        the interval stayed finite)."""
        bad = nonfinite_state(tensors, self.built, self.run_info.preview_batch, self.device, self.cfg.train.seed)
        if bad:
            good = self.run_info.last_checkpoint or "none written yet"
            listed = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise TrainingError(f"non-finite values in {listed} at step {self.step}; no checkpoint written, "
                                f"training stopped. Last good checkpoint: {good}")

    def _resume(self) -> None:
        found = ck.list_checkpoints(self.ckpt_dir)  # not empty: a resume without one starts from step 0
        unusable: list[CheckpointError] = []
        # the latest usable one: a damaged newer one is named and skipped (restore overwrites every part
        # of the state, so a failed attempt leaves nothing behind for the next)
        for _, path in reversed(found):
            try:
                ckpt = ck.read_checkpoint(path)
                if ckpt.step > self.cfg.train.steps:
                    raise ConfigError(f"train.steps: {self.cfg.train.steps} is below the step of the checkpoint it "
                                      f"resumes ({ckpt.step}, {path}); pass --set train.steps=N with N >= {ckpt.step}")
                self.state.restore(ckpt, seed=self.cfg.train.seed, rank=self.dist.rank,
                                   distributed=self.dist.enabled)
                break
            except CheckpointError as exc:
                unusable.append(exc)
        else:
            raise unusable[0]
        if unusable:
            self.echo(f"resume: {unusable[0]}; resuming from the older {path} instead")
        self.run_info.last_checkpoint = path
        self.run_info.resumed_from = self.state.step
        self.echo(f"resumed from {path} at step {self.state.step}")
