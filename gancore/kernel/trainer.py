"""The training kernel: one loop for every variant.

Each iteration runs the critic phase ``n_critic`` times, then the generator phase. A phase is:
autocast forward (the variant's step) -> sum of named terms (+ regularizer penalties) ->
backward (scaled under fp16) -> optimizer step -> constraints. Nothing in the step waits for
the device: losses are accumulated as tensors and read once per ``log.every`` steps.
"""

from __future__ import annotations

import gc
import json
import math
import platform
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata as md
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gancore.config import RunConfig
from gancore.data import TensorData
from gancore.errors import CheckpointError, ConfigError, GancoreError, TrainingError
from gancore.interfaces import Batch, Players, Regularizer, StepContext, StepOutput
from gancore.kernel import checkpoint as ck
from gancore.kernel.build import Model, build_model, ema_update, make_optimizer
from gancore.kernel.distributed import from_env, per_network, wrap
from gancore.kernel.precision import Precision, resolve_device, resolve_precision, scaled_grad
from gancore.kernel.sampler import BatchSampler
from gancore.plugins import PluginHost
from gancore.visualize import save_samples

SAMPLE_SEED_OFFSET = 7919  # sample grids use their own noise, never the training stream


def versions() -> dict[str, str]:
    """gancore, torch, Python and every installed gancore plugin distribution."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in md.distributions():
        name = dist.metadata["Name"] or ""
        if name == "gancore" or name.startswith("gancore-"):
            out[name] = dist.version
    return out


def fixed_batch(data: TensorData, n: int, device: torch.device) -> Batch:
    """The first ``n`` samples of each domain: the inputs of every progress grid."""

    def head(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[:n].to(device)

    return Batch(x=head(data.x), y=head(data.y), x_b=head(data.x_b), y_b=head(data.y_b))


@dataclass
class Player:
    """One side of the game and what the kernel needs to update it."""

    name: str
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    step_fn: Callable[..., StepOutput]

    def __post_init__(self) -> None:
        # Only what the optimizer trains is toggled: parameters frozen on purpose stay frozen.
        self.trainable = [p for group in self.optimizer.param_groups for p in group["params"]]

    def freeze(self, frozen: bool) -> None:
        for p in self.trainable:
            p.requires_grad_(not frozen)


@dataclass
class TrainResult:
    step: int
    seconds: float
    checkpoint: Path | None
    samples: Path | None


_NO_DERIVATIVE = re.compile(r"derivative for '?([\w:.]+)'? is not implemented")


def double_backward_error(exc: RuntimeError, penalties: list[str]) -> GancoreError:
    """Turn PyTorch's failure to differentiate twice into an error naming the operation."""
    message = str(exc)
    found = _NO_DERIVATIVE.search(message)
    if found:
        op = found.group(1).removesuffix("_backward")
        return TrainingError(
            f"the {', '.join(sorted(set(penalties)))} penalty needs the critic's double backward, "
            f"but the critic uses '{op}', which has no double-backward implementation in PyTorch; "
            "replace that operation in the critic or drop the penalty"
        )
    if "once_differentiable" in message:
        return TrainingError(
            f"the {', '.join(sorted(set(penalties)))} penalty needs the critic's double backward, "
            "but the critic uses a custom autograd Function marked @once_differentiable"
        )
    return TrainingError(f"backward through the {', '.join(penalties)} penalty failed: {message}")


def compiled(module: nn.Module) -> nn.Module:
    """``torch.compile`` each network of a player; attribute access (``sample_latent``) passes
    through to the original module."""
    return per_network(module, torch.compile)


def _silent(_: str) -> None:
    """The echo of every process but the main one."""


class Trainer:
    """Trains one run into ``run_dir`` (fresh, or resumed from its latest checkpoint)."""

    def __init__(
        self,
        host: PluginHost,
        cfg: RunConfig,
        run_dir: str | Path,
        *,
        resume: bool = False,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.host, self.cfg, self.echo = host, cfg, echo
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.dist = from_env(cfg.train.device)
        if not self.dist.main:
            self.echo = _silent
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.precision = Precision(resolve_precision(cfg.train.precision, self.device), self.device)
        self._prepare_dir(resume)
        data: TensorData = cfg.data_cls(cfg.data).load()
        self.spec = data.spec
        self.landmarks = data.landmarks
        self.model: Model = build_model(cfg, data.spec, self.device, data=None if resume else data)
        if self.model.init_info:
            for key, value in self.model.init_info.items():
                summary = value.get("summary", value) if isinstance(value, dict) else value
                self.echo(f"initialize: {key}: {summary}")
            if self.dist.main:
                ck.write_text_atomic(json.dumps(self.model.init_info, indent=2) + "\n", self.run_dir / "init.json")
        nets = self.model.nets
        variant = self.model.variant
        self.players = {
            "critic": Player("critic", make_optimizer(cfg.optim.critic, nets.critic, cfg.train.fused_optimizer),
                             self.precision.scaler(), variant.critic_step),
            "generator": Player("generator", make_optimizer(cfg.optim.generator, nets.generator,
                                                            cfg.train.fused_optimizer),
                                self.precision.scaler(), variant.generator_step),
        }
        self.sampler = BatchSampler(data, cfg.train.batch_size, self.device, cfg.train.seed,
                                    rank=self.dist.rank, world_size=self.dist.world_size)
        self._phase_nets = self._runtime_nets(nets)
        self.sampler.channels_last = self.model.channels_last
        self._preview_batch = fixed_batch(data, cfg.log.samples, self.device)
        # rng: per process (the same as shared_rng in one process); shared_rng: the same everywhere
        self.shared_rng = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 1)
        self.rng = self.shared_rng
        if self.dist.enabled:
            self.rng = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 1 + 7919 * self.dist.rank)
            torch.manual_seed(cfg.train.seed + 104729 * (self.dist.rank + 1))  # distinct penalty draws
        self.step = 0
        self.critic_steps = 0
        self._scheduled = any(getattr(cfg.optim, p).schedule != "constant" for p in self.players)
        self._sums: dict[str, Tensor] = {}
        self._count = 0
        self._bad = torch.zeros((), dtype=torch.bool, device=self.device)
        self._last_checkpoint: Path | None = None
        self._last_samples: Path | None = None
        self._tb: Any = None
        if cfg.log.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("log.tensorboard: needs the tensorboard package (pip install tensorboard)") from None
            self._tb_cls = SummaryWriter
        self._eval_ctx: Any = None
        self._eval_metrics: list[tuple[type, Any]] = []
        if resume:
            self._resume()
        if self.dist.main:
            ck.write_text_atomic(json.dumps(cfg.to_dict(), indent=2) + "\n", self.run_dir / "config.json")
        self.dist.barrier()

    def _runtime_nets(self, nets: Players) -> dict[str, Players]:
        """The networks each phase runs: under torch.distributed the player being updated is
        wrapped in DDP (the other runs raw: frozen, nothing to synchronise); with
        ``train.compile`` the generator is compiled, and the critic too unless a regularizer
        needs its double backward. Checkpoints and EMA always use the raw modules."""
        gen_d, critic_d = nets.generator, nets.critic
        if self.dist.enabled:
            gen_d, critic_d = wrap(gen_d, self.device), wrap(critic_d, self.device)
        gen_c, critic_c = gen_d, critic_d
        gen_raw, critic_raw = nets.generator, nets.critic
        if self.cfg.train.compile:
            double_backward = any(type(r).penalty is not Regularizer.penalty for r in self.model.regularizers)
            gen_c = compiled(gen_d)
            gen_raw = gen_c if gen_d is gen_raw else compiled(gen_raw)
            if not double_backward:
                critic_c = compiled(critic_d)
                critic_raw = critic_c if critic_d is critic_raw else compiled(critic_raw)
        return {"critic": Players(generator=gen_raw, critic=critic_c),
                "generator": Players(generator=gen_c, critic=critic_raw)}

    # -- run directory ---------------------------------------------------------------------
    def _prepare_dir(self, resume: bool) -> None:
        has_run = (self.run_dir / "config.json").exists() or bool(ck.list_checkpoints(self.ckpt_dir))
        if resume and not has_run:
            raise ConfigError(f"--resume: {self.run_dir} holds no run to resume")
        if not resume and has_run:
            raise ConfigError(
                f"--out: {self.run_dir} already holds a run; pass --resume to continue it "
                "or choose another --out"
            )
        self.dist.barrier()  # every process has checked before the main one creates anything
        if self.dist.main:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            self.ckpt_dir.mkdir(parents=True, exist_ok=True)

    # -- the step --------------------------------------------------------------------------
    def _phase(self, player: Player, other: Player) -> None:
        batch: Batch = self.sampler.next()
        ctx = StepContext(step=self.step, device=self.device, rng=self.rng, rank=self.dist.rank,
                          world_size=self.dist.world_size, shared_rng=self.shared_rng)
        player.optimizer.zero_grad(set_to_none=True)
        other.freeze(True)  # no gradients for the player that is not being updated
        nets = self._phase_nets[player.name]
        with self.precision.autocast():
            out = player.step_fn(nets, batch, ctx)
        loss = self._add_terms(player.name, out.terms, out.stats)
        self._bad |= ~torch.isfinite(loss.detach())
        penalised: list[str] = []
        if player.name == "critic":
            penalty, penalised = self._penalties(out, player.scaler)
            loss = loss + penalty
        try:
            player.scaler.scale(loss).backward()
        except RuntimeError as exc:
            if penalised:
                raise double_backward_error(exc, penalised) from exc
            raise
        player.scaler.step(player.optimizer)
        player.scaler.update()
        other.freeze(False)

    def _add_terms(self, player: str, terms: dict[str, Tensor], stats: dict[str, Tensor]) -> Tensor:
        if not terms:
            raise TrainingError(f"the variant returned no loss terms for the {player}")
        total = sum(terms.values())
        assert isinstance(total, Tensor)
        for name, value in terms.items():
            self._accumulate(f"{player}/{name}", value)
        if len(terms) > 1:
            self._accumulate(f"{player}/total", total)
        for name, value in stats.items():
            self._accumulate(f"{player}/{name}", value)
        return total

    def _penalties(self, out: StepOutput, scaler: torch.amp.GradScaler) -> tuple[Tensor | float, list[str]]:
        total: Tensor | float = 0.0
        applied: list[str] = []
        grad = scaled_grad(scaler)
        for reg in self.model.regularizers:
            if self.critic_steps % reg.every != 0:
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
                    self._accumulate(f"{key}_overflow", (~finite).float())
                    self._accumulate(key, torch.where(finite, value.detach(), 0.0))
                else:
                    self._bad |= ~torch.isfinite(value.detach())
                    self._accumulate(key, value)
                total = total + reg.weight * reg.every * value
                applied.append(reg.name)
        return total, applied

    def _accumulate(self, key: str, value: Tensor) -> None:
        value = value.detach().float()
        if key in self._sums:
            self._sums[key] += value
        else:
            self._sums[key] = value.clone()

    def _set_learning_rates(self) -> None:
        for name, player in self.players.items():
            settings = getattr(self.cfg.optim, name)
            lr = settings.lr_at(self.step, self.cfg.train.steps)
            for group in player.optimizer.param_groups:
                group["lr"] = lr

    def _iteration(self) -> None:
        nets = self.model.nets
        critic, generator = self.players["critic"], self.players["generator"]
        if self._scheduled:
            self._set_learning_rates()
        for _ in range(self.cfg.train.n_critic):
            self._phase(critic, generator)
            for reg in self.model.regularizers:
                reg.after_step(nets.critic)
            self.critic_steps += 1
        self._phase(generator, critic)
        if self.model.ema is not None:
            ema_update(self.model.ema, nets.generator, float(self.cfg.train.ema))
        self.step += 1
        self._count += 1

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        total = cfg.train.steps
        self.host.run_start(str(self.run_dir), cfg.to_dict())
        self.echo(
            f"training {cfg.variant_cls.name} on {cfg.data_cls.name} "
            f"({self.device}, {self.precision.name}"
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
            if self._tb is not None:
                self._tb.close()
                self._tb = None
            self.host.run_end(str(self.run_dir), self.step, status)
            if self.dist.enabled and status == "completed":
                self._end_distributed()
        return TrainResult(self.step, time.perf_counter() - started, self._last_checkpoint,
                           self._last_samples)

    def _end_distributed(self) -> None:
        """Release the DDP wrappers (their reducers hold the process group and its gloo/NCCL
        work) before every process ends the group together; a group torn down while they are
        still alive, or left to interpreter shutdown, can abort a process after training ended."""
        self._phase_nets = {}
        gc.collect()
        self.dist.barrier()
        torch.distributed.destroy_process_group()

    def advance(self, steps: int, bar: Any = None) -> None:
        """Train ``steps`` iterations with the run's logging, evaluation, samples and checkpoints
        (all of them also at ``train.steps``). :meth:`run` is this plus the run's start and end;
        the speed benchmark calls it in blocks."""
        cfg = self.cfg
        total = cfg.train.steps
        if not hasattr(self, "_interval_start"):
            self._interval_start = time.perf_counter()
        for _ in range(steps):
            self._iteration()
            if bar is not None:
                bar.update(1)
            last = self.step == total
            if self.step % cfg.log.every == 0 or last:
                record = self._log()
                if bar is not None:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in record.items() if "/" in k}, refresh=False)
            if (cfg.log.sample_every and self.step % cfg.log.sample_every == 0) or last:
                self._samples()
            if cfg.eval.every and (self.step % cfg.eval.every == 0 or last):
                self._evaluate()
            if (cfg.log.checkpoint_every and self.step % cfg.log.checkpoint_every == 0) or last:
                self._checkpoint()

    def _check_finite(self, names: list[str] | None = None) -> None:
        if bool(self._bad):
            where = f" in {', '.join(names)}" if names else ""
            good = self._last_checkpoint or "none written yet"
            raise TrainingError(
                f"non-finite loss{where} before step {self.step}; training stopped. "
                f"Last good checkpoint: {good}"
            )

    def _log(self) -> dict[str, float]:
        keys = list(self._sums)
        means = torch.stack([self._sums[k] for k in keys]).div_(max(self._count, 1))
        values = self.dist.all_reduce_mean(means).tolist()  # averaged over processes (one call per log)
        self._bad = self.dist.any(self._bad)
        now = time.perf_counter()
        record: dict[str, Any] = {"step": self.step}
        record.update({k: float(v) for k, v in zip(keys, values, strict=True)})
        record["it_per_s"] = self._count / max(now - self._interval_start, 1e-9)
        self._interval_start = now
        self._sums.clear()
        self._count = 0
        self._check_finite([k for k, v in record.items() if not math.isfinite(v)])
        self._write_record(record)
        return record

    def _write_record(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.cfg.log.tensorboard:
            tb = self._tensorboard()
            for key, value in record.items():
                if key != "step":
                    tb.add_scalar(key, value, record["step"])
        self.host.log(self.step, record)

    def _tensorboard(self) -> Any:
        if self._tb is None:
            self._tb = self._tb_cls(log_dir=str(self.run_dir / "tensorboard"))
        return self._tb

    # -- evaluation ------------------------------------------------------------------------
    def _evaluate(self) -> None:
        """Run the configured metrics on the current generator (EMA if kept): eval/*.json with
        provenance, and one metrics.jsonl record of ``eval/<metric>/<value>``. Only at these steps,
        so the training steps in between pay nothing; RNG streams of training are not touched."""
        from gancore.evaluation import EvalContext, default_metrics, run_metrics, write_results

        if not self.dist.main:
            return
        if self._eval_ctx is None:
            self._eval_ctx = EvalContext(host=self.host, model=self.model, cfg=self.cfg, step=self.step,
                                         n=self.cfg.eval.n, seed=self.cfg.train.seed)
            metrics = self.cfg.eval_metrics or [
                (self.host.metrics.get(name), self.host.metrics.get(name).Config())
                for name in default_metrics(self.host, self._eval_ctx.task)]
            self._eval_metrics = metrics
        ctx = self._eval_ctx
        ctx.step = self.step
        ctx.forget_generated()
        results = run_metrics(ctx, self._eval_metrics, skip=None if self.cfg.eval_metrics else self.echo)
        write_results(self.run_dir, results)
        record: dict[str, Any] = {"step": self.step}
        for r in results:
            record.update({f"eval/{r['metric']}/{k}": v for k, v in r["values"].items()
                           if isinstance(v, int | float) and not isinstance(v, bool)})
        self._write_record(record)

    # -- samples ---------------------------------------------------------------------------
    @torch.no_grad()
    def _samples(self) -> None:
        if not self.dist.main:
            return
        rng = torch.Generator(device=self.device).manual_seed(self.cfg.train.seed + SAMPLE_SEED_OFFSET)
        gen = self.model.ema if self.model.ema is not None else self.model.nets.generator
        was_training = gen.training
        gen.eval()
        n = self.cfg.log.samples if self.spec.kind == "image" else self.cfg.log.scatter_points
        try:
            x, nrow = self.model.variant.preview(gen, self._preview_batch, n, rng=rng, device=self.device)
        finally:
            gen.train(was_training)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        reference = self.landmarks.numpy() if self.landmarks is not None else None
        save_samples(x.float(), path, reference=reference, nrow=nrow)
        self._last_samples = path
        if self.cfg.log.tensorboard:
            import numpy as np
            from PIL import Image

            grid = np.asarray(Image.open(path).convert("RGB"))
            self._tensorboard().add_image("samples", grid, self.step, dataformats="HWC")

    # -- checkpoints -----------------------------------------------------------------------
    def _checkpoint(self) -> None:
        self._bad = self.dist.any(self._bad)
        self._check_finite()
        if not self.dist.main:  # the main process writes; the others know its path
            self._last_checkpoint = self.ckpt_dir / ck.checkpoint_name(self.step)
            return
        tensors: dict[str, Tensor] = {}
        meta: dict[str, str] = {
            "format": ck.FORMAT,
            "format_version": ck.FORMAT_VERSION,
            "step": str(self.step),
            "critic_steps": str(self.critic_steps),
            "config": json.dumps(self.cfg.to_dict()),
            "versions": json.dumps(versions()),
            "data_spec": json.dumps({"kind": self.spec.kind, "shape": list(self.spec.shape),
                                     "num_classes": self.spec.num_classes, "domains": self.spec.domains}),
            "precision": self.precision.name,
        }
        nets = self.model.nets
        tensors.update(ck.module_tensors("generator", nets.generator))
        tensors.update(ck.module_tensors("critic", nets.critic))
        if self.model.ema is not None:
            tensors.update(ck.module_tensors("ema", self.model.ema))
        for name, player in self.players.items():
            state, scalars = ck.optimizer_state(f"optim.{name}", player.optimizer)
            tensors.update(state)
            meta[f"optim.{name}"] = scalars
            meta[f"scaler.{name}"] = json.dumps(player.scaler.state_dict())
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.latent"] = self.shared_rng.get_state()
        sampler_tensors, sampler_scalars = self.sampler.state()
        tensors.update({f"sampler.{k}": v for k, v in sampler_tensors.items()})
        meta["sampler"] = json.dumps(sampler_scalars)
        path = self.ckpt_dir / ck.checkpoint_name(self.step)
        ck.write_atomic(tensors, meta, path)
        self._last_checkpoint = path
        for _, old in ck.list_checkpoints(self.ckpt_dir)[: -self.cfg.log.keep_checkpoints]:
            old.unlink()
        self.host.checkpoint_saved(self.step, str(path))

    def _resume(self) -> None:
        found = ck.list_checkpoints(self.ckpt_dir)
        if not found:
            raise CheckpointError(f"--resume: {self.ckpt_dir} holds no checkpoint")
        path = found[-1][1]
        c = ck.read_checkpoint(path)
        nets = self.model.nets
        c.load_module("generator", nets.generator)
        c.load_module("critic", nets.critic)
        if self.model.ema is not None:
            if c.has("ema"):
                c.load_module("ema", self.model.ema)
            else:
                self.model.ema.load_state_dict(nets.generator.state_dict())
        try:
            for name, player in self.players.items():
                ck.load_optimizer_state(player.optimizer, f"optim.{name}", c.tensors,
                                        c.metadata[f"optim.{name}"])
                player.scaler.load_state_dict(c.json(f"scaler.{name}"))
            torch.set_rng_state(c.tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in c.tensors:
                torch.cuda.set_rng_state(c.tensors["rng.cuda"], self.device)
            self.shared_rng.set_state(c.tensors["rng.latent"].to(self.shared_rng.get_state().device))
            if self.dist.enabled:  # the per-process streams restart from the step (rank 0's state is saved)
                seed = self.cfg.train.seed + 1000003 * c.step
                self.rng.manual_seed(seed + 1 + 7919 * self.dist.rank)
                torch.manual_seed(seed + 104729 * (self.dist.rank + 1))
            self.sampler.restore(c.section("sampler"), c.json("sampler"))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: cannot restore the training state: {exc}") from None
        self.step = c.step
        self.critic_steps = int(c.metadata.get("critic_steps", 0))
        self._last_checkpoint = path
        if self.dist.main:  # one process rewrites the run directory's files
            self._truncate_metrics(self.step)
        self.echo(f"resumed from {path} at step {self.step}")

    def _truncate_metrics(self, step: int) -> None:
        """Drop records a crashed run logged after the checkpoint it resumes from."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= step]
        ck.write_text_atomic("".join(line + "\n" for line in kept), path)
