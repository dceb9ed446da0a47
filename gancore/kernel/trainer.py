"""The training loop: one loop for every variant.

Each iteration runs the variant's schedule (:meth:`gancore.Variant.phases`: by default
``n_critic`` critic updates, then one generator update; :mod:`gancore.kernel.phases` runs each),
updates the EMA, and then, when due, logs, fires ``gancore_step_end`` (sample grids and
evaluation are plugins on it: :mod:`gancore.default_plugins`) and checkpoints the state
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

from gancore.config import RunConfig
from gancore.data import TensorData
from gancore.errors import ConfigError, TrainingError
from gancore.interfaces import Networks, StepContext
from gancore.kernel import checkpoint as ck
from gancore.kernel.allocator import apply_allocator
from gancore.kernel.augment import CriticAugment
from gancore.kernel.build import BuiltRun, build_run, check_against_variant, ema_update, phase_views
from gancore.kernel.distributed import from_env
from gancore.kernel.drawing import fixed_batch
from gancore.kernel.finite import nonfinite_loss, nonfinite_state
from gancore.kernel.phases import PhaseRunner, StepStats
from gancore.kernel.precision import Precision, resolve_device, resolve_precision_why
from gancore.kernel.run_dir import RunDirectory
from gancore.kernel.run_view import Run
from gancore.kernel.sampler import BatchSampler
from gancore.kernel.state import TrainState, Updater, process_seeds
from gancore.kernel.threads import SHARING_REMEDY, SlowdownWatch, ThreadPolicy
from gancore.plugins import PluginHost


@dataclass
class TrainResult:
    step: int
    seconds: float
    checkpoint: Path | None
    samples: Path | None
    stopped: str | None = None
    """Why the run ended before ``train.steps`` (a plugin's ``run.stop(reason)``); None: it completed."""


def _silent(_: str) -> None:
    """The echo of every process but the main one."""


class Trainer:
    """Trains one run into ``run_dir`` (fresh, or resumed from its latest checkpoint)."""

    def __init__(self, host: PluginHost, cfg: RunConfig, run_dir: str | Path, *, resume: bool = False,
                 echo: Callable[[str], None] = print) -> None:
        self.host, self.cfg, self.echo = host, cfg, echo
        self.dist = from_env(cfg.train.device)
        if not self.dist.main:
            self.echo = _silent
        self.directory = RunDirectory(run_dir, main=self.dist.main)
        self.run_dir, self.ckpt_dir = self.directory.path, self.directory.checkpoints
        self.directory.acquire()  # one training process per run directory, for the run's life
        try:
            self._setup(resume)
        except BaseException:
            self.directory.release(remove_if_unused=True)  # a run that fails to start leaves nothing behind
            if hasattr(self, "threads"):
                self.threads.close()
            raise

    def _setup(self, resume: bool) -> None:
        cfg, host = self.cfg, self.host
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        # a run killed before its first checkpoint resumes from step 0 (a fresh start in its own directory)
        from_scratch = self.directory.check(resume)
        resume = resume and not from_scratch
        precision, self.precision_why = resolve_precision_why(
            cfg.train.precision, self.device, bf16_ok=cfg.variant_cls.capabilities(cfg.variant).auto_bf16,
            who=f"variant {cfg.variant_cls.name}")
        kept = self.directory.recorded_precision() if resume and cfg.train.precision == "auto" else None
        if kept is not None and kept != precision:  # a run from before auto chose bf16 on this CPU
            precision, self.precision_why = kept, "auto: as the checkpoint was trained"
        self.precision = Precision(precision, self.device)
        cfg.train.precision = precision  # config.json and the checkpoints record what auto chose
        self.threads = ThreadPolicy(cfg.train.threads)
        self.threads_why = self.threads.start()
        self.allocator_why = apply_allocator(cfg.train.allocator, self.device.type)
        self.slowdown = SlowdownWatch(self.echo, remedy=SHARING_REMEDY) if self.device.type == "cpu" else None
        data: TensorData = cfg.data_cls(cfg.data).load()
        data.check(cfg.data_where)
        for note in data.notes:
            self.echo(f"note: {note}")
        if cfg.data_flip:  # data.flip of a source without its own: the sampler flips images
            if data.x.dim() != 4:
                raise ConfigError(f"data.flip: flips images, and data source {cfg.data_cls.name!r} gave "
                                  f"samples of shape {list(data.x.shape[1:])}")
            data.flip = True
        self.spec = data.spec
        self.built: BuiltRun = build_run(cfg, data.spec, self.device, data=None if resume else data)
        if cfg.train.init_from is not None and not resume:
            from gancore.kernel.init_from import init_from

            init_from(self.built, cfg.train.init_from, strict=cfg.train.init_strict, echo=self.echo)
        self.phases = self.built.variant.phases(cfg.train.n_critic)
        check_against_variant(cfg, self.built, self.phases, distributed=self.dist.enabled)
        trained = [name for name in self.built.nets.names() if any(name in p.players for p in self.phases)]
        self.state = TrainState.fresh(cfg, self.built, trained, data, self.precision, self.dist)
        self.stats = StepStats(self.device)
        views = phase_views(self.built, trained, distributed=self.dist.enabled, device=self.device,
                            compile_networks=cfg.train.compile)
        if cfg.augment_cls is not None:
            views = self._augmented(views)
        self.runner = PhaseRunner(self.built, self.precision, self.state, views, self.stats,
                                  accumulate=cfg.train.accumulate, mean=self.dist.all_reduce_mean)
        self._scheduled = [p for p in trained if cfg.optim.for_player(p).scheduled]
        self.preview_batch = fixed_batch(data, cfg.log.samples, self.device)
        self.view = Run(run_dir=self.run_dir, config=cfg, built=self.built, spec=self.spec, device=self.device,
                        total_steps=cfg.train.steps, preview_batch=self.preview_batch, landmarks=data.landmarks,
                        host=host, hooks=host.lifecycle(self.echo, off=cfg.plugins_off), state=self.state,
                        directory=self.directory, echo=self.echo)
        if resume:
            self._resume()
        elif from_scratch:
            self.view.resumed_from = 0  # drops the killed attempt's records from metrics.jsonl
            self.echo(f"resume: {self.ckpt_dir} holds no checkpoint yet; starting the run from step 0")
        self.dist.barrier()  # every process has checked before the main one creates anything
        self.directory.create(cfg.to_dict())
        self.dist.barrier()

    def _augmented(self, views: dict[str, Networks]) -> dict[str, Networks]:
        """``augment.name``: every phase's critic augments its image input (:mod:`gancore.kernel.augment`)."""
        cfg = self.cfg
        if self.built.nets.critic is None:
            raise ConfigError(f"augment.name: variant {cfg.variant_cls.name!r} has no critic to augment the inputs of")
        seed = cfg.train.seed + 2
        if self.dist.enabled:
            seed = process_seeds(cfg.train.seed, self.dist.rank)[0] + 2
        rng = torch.Generator(device=self.device).manual_seed(seed)
        augment = CriticAugment(cfg.augment_cls(cfg.augment), rng, int(self.spec.shape[0]), self.device,
                                cfg.train.batch_size * self.dist.world_size)
        augment.tap(self.built.variant.loss)
        self.state.augment = augment
        return {player: nets.replace(critic=augment.wrap(nets.critic)) if nets.critic is not None else nets
                for player, nets in views.items()}

    # -- names the tests, benchmarks and plugins read ---------------------------------------
    @property
    def step(self) -> int:
        return self.state.step

    @property
    def sampler(self) -> BatchSampler:
        return self.state.sampler

    @property
    def updaters(self) -> dict[str, Updater]:
        return self.state.updaters

    @property
    def last_checkpoint(self) -> Path | None:
        return self.directory.last_checkpoint

    # -- the schedule ----------------------------------------------------------------------
    def _context(self) -> StepContext:
        state = self.state
        return StepContext(step=state.step, device=self.device, rng=state.rng, rank=self.dist.rank,
                           world_size=self.dist.world_size, shared_rng=state.shared_rng)

    def _set_learning_rates(self) -> None:
        for name in self._scheduled:
            lr = self.cfg.optim.for_player(name).lr_at(self.state.step, self.cfg.train.steps)
            for group in self.state.updaters[name].optimizer.param_groups:
                group["lr"] = lr

    def _iteration(self) -> None:
        state = self.state
        if self._scheduled:
            self._set_learning_rates()
        for phase in self.phases:
            if state.step % phase.every:
                continue
            for i in range(phase.repeat):
                self.runner.run(phase, state.sampler.next(), self._context(), last=i == phase.repeat - 1)
        self.runner.end_iteration()
        if self.built.emas:
            decay = self.cfg.train.ema_decay(state.step, self.cfg.train.batch_size * self.dist.world_size)
            for player, average in self.built.emas.items():
                ema_update(average, self.built.nets.get(player), decay)
        state.step += 1

    # -- the loop --------------------------------------------------------------------------
    def _hook(self, name: str, **kwargs: Any) -> None:
        if self.dist.main:
            self.view.hooks.call(name, run=self.view, **kwargs)

    def train(self) -> TrainResult:
        cfg = self.cfg
        total = cfg.train.steps
        self._hook("gancore_run_start", run_dir=str(self.run_dir), config=cfg.to_dict())
        if self.built.init_reports:
            self._hook("gancore_initialized", reports=self.built.init_reports)
        self.echo(
            f"training {cfg.variant_cls.name} on {cfg.data_cls.name} ({self.device}; {self.precision.name}, "
            f"{self.precision_why}; {self.threads_why}" + (f"; {self.allocator_why}" if self.allocator_why else "")
            + (f"; {self.dist.world_size} processes x batch {cfg.train.batch_size}" if self.dist.enabled else "")
            + f") for {total} steps -> {self.run_dir}"
        )
        bar = None
        if cfg.log.progress and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=self.step, unit="it", dynamic_ncols=True, leave=True)
        started = time.perf_counter()
        self.directory.clear_stopped()
        status = "failed"
        try:
            self._interval_start = time.perf_counter()
            self.state.interval_start = self.step
            self.advance(total - self.step, bar)
            status = "stopped" if self.view.stop_reason is not None else "completed"
        finally:
            if bar is not None:
                bar.close()
            self.sampler.close()
            self._hook("gancore_run_end", run_dir=str(self.run_dir), step=self.step, status=status)
            if self.dist.enabled and status != "failed":
                self._end_distributed()
            self.directory.release()
            self.threads.close()
        return TrainResult(self.step, time.perf_counter() - started, self.directory.last_checkpoint,
                           self.directory.newest_samples(), self.view.stop_reason)

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
        of them also at ``train.steps``). :meth:`train` is this plus the run's start and end; the
        speed benchmark calls it in blocks."""
        cfg = self.cfg
        if not hasattr(self, "_interval_start"):
            self._interval_start = time.perf_counter()
            self.state.interval_start = self.step
        for _ in range(steps):
            began = time.perf_counter()
            self._iteration()
            if self.slowdown is not None:
                self.slowdown.add(time.perf_counter() - began)
            if self.threads.recount():
                self.echo(f"threads: {self.threads.describe()}")
                if self.slowdown is not None:
                    self.slowdown.reset()
            if bar is not None:
                bar.update(1)
            last = self.step == cfg.train.steps
            if self.step % cfg.log.every == 0 or last:
                record = self._log()
                if bar is not None:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if "/" in k}, refresh=False)
            self._hook("gancore_step_end", step=self.step)
            due = (cfg.log.checkpoint_every and self.step % cfg.log.checkpoint_every == 0) or last
            stop = not last and self._stop_requested()
            if due or stop:
                self._checkpoint()
            if stop:
                reason = self.view.stop_reason = self.view.stop_reason or "stopped by another process"
                self.directory.write_stopped(self.step, reason)
                self.echo(f"stopped at step {self.step}: {reason}")
                return

    def _stop_requested(self) -> bool:
        """A plugin called ``run.stop``: at once in one process; under torch.distributed at a logging step,
        where the processes agree (one all-reduce, as the log's)."""
        asked = self.view.stop_reason is not None
        if not self.dist.enabled:
            return asked
        if self.step % self.cfg.log.every:
            return False
        return bool(self.dist.any(torch.tensor(asked, device=self.device)))

    def _check_finite(self, names: list[str] | None = None) -> None:
        if bool(self.stats.nonfinite):
            raise nonfinite_loss(self.stats, names or [], self.built.variant, self.step,
                                 self.directory.good_checkpoint())

    def _log(self) -> dict[str, float]:
        stats, state = self.stats, self.state
        keys = list(stats.sums)
        count = max(state.interval_steps, 1)
        means = torch.stack([stats.sums[k] for k in keys]).div_(count)
        values = self.dist.all_reduce_mean(means).tolist()  # averaged over processes (one call per log)
        stats.nonfinite = self.dist.any(stats.nonfinite)
        now = time.perf_counter()
        record: dict[str, Any] = {"step": self.step}
        record.update({k: float(v) for k, v in zip(keys, values, strict=True)})
        for name in self._scheduled:  # the rate of the interval's last step
            record[f"{name}/lr"] = float(state.updaters[name].optimizer.param_groups[0]["lr"])
        if state.augment is not None:
            record.update({k: float(v) for k, v in state.augment.log_values().items()})
        record["it_per_s"] = state.interval_steps / max(now - self._interval_start, 1e-9)
        self._interval_start = now
        self._check_finite([k for k, v in record.items() if not math.isfinite(v)])
        stats.clear()
        state.interval_start = state.step
        if self.dist.main:
            self.view.log(record)
        return record

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self.stats.nonfinite = self.dist.any(self.stats.nonfinite)
        self._check_finite()
        if not self.dist.main:  # the main process writes; the others know its path
            self.directory.write_checkpoint(self.step, {}, {}, keep=self.cfg.log.keep_checkpoints)
            return
        tensors, meta = self.state.checkpoint(self.cfg.to_dict(), self.precision.name)
        self._check_state_finite(tensors)
        path = self.directory.write_checkpoint(self.step, tensors, meta, keep=self.cfg.log.keep_checkpoints)
        self._hook("gancore_checkpoint_saved", step=self.step, path=str(path))

    def _check_state_finite(self, tensors: dict[str, torch.Tensor]) -> None:
        """A checkpoint is written only of a finite state (see :func:`nonfinite_state`): the last good
        checkpoint really is good (fp16 at a huge rate can blow up the weights while the losses of
        the interval stayed finite)."""
        bad = nonfinite_state(tensors, self.built, self.preview_batch, self.device, self.cfg.train.seed)
        if bad:
            good = self.directory.good_checkpoint()
            listed = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise TrainingError(f"non-finite values in {listed} at step {self.step}; no checkpoint written, "
                                f"training stopped. Last good checkpoint: {good}")

    def _resume(self) -> None:
        def restore(ckpt: ck.Checkpoint) -> None:
            self.state.restore(ckpt, seed=self.cfg.train.seed, rank=self.dist.rank, distributed=self.dist.enabled)

        path = self.directory.resume(restore, max_step=self.cfg.train.steps, echo=self.echo)
        self.view.resumed_from = self.state.step
        self.echo(f"resumed from {path} at step {self.state.step}")
