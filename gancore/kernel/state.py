"""The training state and its checkpoint schema.

:class:`TrainState` owns everything a resume needs: the networks and the EMA (through the
:class:`~gancore.kernel.build.BuiltRun`), one optimizer and one grad scaler per player, every RNG
stream, the data sampler's position and the counters. This module is the only place that knows
the checkpoint's key names; training, resume, ``sample``, ``translate`` and ``eval`` all go
through it.

Keys (format version 1; the ``updates`` entry was added later and is optional):

- tensors ``<network>.<state_dict key>`` for ``generator``, ``critic``, every other player, and
  ``ema`` (the generator's moving average; ``ema_<player>`` for another averaged player),
  ``state_<name>`` (the variant's :attr:`~gancore.Networks.state`);
  ``optim.<player>.<param index>.<state key>``; ``rng.torch``, ``rng.cuda`` (CUDA runs),
  ``rng.latent``; ``sampler.<key>``; with ``augment.name``, ``rng.augment`` and ``augment.<key>`` (the
  augmentation's state, ADA's ``p``);
- metadata ``format``, ``format_version``, ``step``, ``critic_steps``, ``updates`` (JSON: updates per
  player), ``config``, ``versions``, ``data_spec``, ``precision``, ``optim.<player>`` (JSON: the
  optimizer's non-tensor state), ``scaler.<player>`` (JSON), ``sampler`` (JSON), and ``codes`` (JSON:
  the generator's structured codes, :mod:`gancore.codes`; only when it takes any).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata as md
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gancore.codes import codes_of, codes_to_json
from gancore.errors import CheckpointError
from gancore.interfaces import DataSpec
from gancore.kernel import checkpoint as ck
from gancore.kernel.build import BuiltRun, ema_prefix, make_optimizer
from gancore.kernel.sampler import BatchSampler
from gancore.variant import CRITIC

if TYPE_CHECKING:
    from gancore.config import RunConfig
    from gancore.data import TensorData
    from gancore.kernel.augment import CriticAugment
    from gancore.kernel.distributed import Dist
    from gancore.kernel.precision import Precision


def versions() -> dict[str, str]:
    """gancore, torch, Python and every installed gancore plugin distribution."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in md.distributions():
        name = dist.metadata["Name"] or ""
        if name == "gancore" or name.startswith("gancore-"):
            out[name] = dist.version
    return out


def process_seeds(seed: int, rank: int, step: int = 0) -> tuple[int, int]:
    """The seeds of one process's own streams: (its latent/step stream, the global torch RNG).

    Rank 0 of a fresh run and a single process use the run's streams; under torch.distributed
    each rank gets distinct streams, and a resumed run restarts them from the step (only rank 0's
    state is saved)."""
    base = seed + 1000003 * step
    return base + 1 + 7919 * rank, base + 104729 * (rank + 1)


def network_sections(built: BuiltRun) -> dict[str, nn.Module]:
    """Checkpoint prefix -> module, for every network a run trains, and the EMA."""
    sections = dict(built.nets.items())
    sections.update({ema_prefix(player): average for player, average in built.emas.items()})
    sections.update({f"state_{name}": module for name, module in built.nets.state.items()})
    return sections


def renamed(ckpt: ck.Checkpoint, renames: dict[str, str]) -> ck.Checkpoint:
    """``ckpt`` with tensor prefixes renamed by a variant's ``checkpoint_renames`` (old -> new),
    each only when the checkpoint has nothing under the new name (it predates the move)."""
    tensors = dict(ckpt.tensors)
    for old, new in renames.items():
        if any(key.startswith(f"{new}.") for key in tensors):
            continue
        for key in [k for k in tensors if k.startswith(f"{old}.")]:
            tensors[f"{new}.{key[len(old) + 1:]}"] = tensors.pop(key)
    return ck.Checkpoint(ckpt.path, tensors, ckpt.metadata)


def load_networks(ckpt: ck.Checkpoint, built: BuiltRun, *, ema_required: bool = False) -> None:
    """Load every network (and the EMAs, and the variant's state) of ``built`` from ``ckpt``. A
    checkpoint written without a player's EMA gives the EMA that player's weights, unless
    ``ema_required`` (a resume: the run kept its average, so a missing one is damage)."""
    if built.variant.checkpoint_renames:
        ckpt = renamed(ckpt, built.variant.checkpoint_renames)
    averaged = {ema_prefix(player): player for player in built.emas}
    for prefix, module in network_sections(built).items():
        if prefix in averaged and not ckpt.has(prefix):
            if ema_required:
                raise CheckpointError(f"{ckpt.path}: no '{prefix}.*' tensors, but the run keeps an EMA of "
                                      f"{averaged[prefix]!r} (resuming would replace the average by the weights)")
            module.load_state_dict(built.nets.get(averaged[prefix]).state_dict())
            continue
        ckpt.load_module(prefix, module)


def check_finite(ckpt: ck.Checkpoint) -> None:
    """A CheckpointError naming the first tensor with a NaN or an infinity: such a checkpoint (weights,
    BatchNorm statistics, moments) cannot continue a run, and resume falls back to an older one."""
    for key, value in ckpt.tensors.items():
        if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{ckpt.path}: tensor {key!r} holds non-finite values (NaN or infinity)")


_FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def check_scaler_state(name: str, state: object, enabled: bool) -> None:
    """A ValueError naming ``scaler.<player>`` unless ``state`` is a GradScaler's: nothing when the scaler is
    off (no fp16), else a finite positive scale within float32, growth above 1, back-off within (0, 1) and
    the tracker within its interval (a NaN scale would skip every step; 1e300 is infinite in float32)."""
    if not isinstance(state, dict):
        raise ValueError(f"{name} must be a JSON object")
    if not enabled:
        return

    def number(key: str, low: float, high: float, *, integer: bool = False) -> float:
        value = state.get(key)
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or not (low <= value <= high):
            raise ValueError(f"{name}: {key!r} must be a {'whole ' if integer else ''}number within "
                             f"[{low:g}, {high:g}], found {json.dumps(value)[:40]}")
        return value

    number("scale", 2.0 ** -149, _FLOAT32_MAX)
    number("growth_factor", 1.0, 1e6)
    number("backoff_factor", 1e-6, 1.0)
    interval = number("growth_interval", 1, 2 ** 31 - 1, integer=True)
    number("_growth_tracker", 0, interval, integer=True)


def data_spec(ckpt: ck.Checkpoint) -> DataSpec:
    """The data spec the checkpoint's networks were built for."""
    try:
        return DataSpec.from_json(ckpt.metadata["data_spec"])
    except KeyError:
        raise CheckpointError(f"{ckpt.path}: checkpoint metadata lacks 'data_spec'") from None
    except ValueError as exc:
        raise CheckpointError(f"{ckpt.path}: {exc}") from None


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


class TrainState:
    """Everything a resume needs, written and read as one checkpoint: the built networks, one
    :class:`Updater` per trained player, the RNG streams, the sampler and every counter."""

    def __init__(self, built: BuiltRun, updaters: dict[str, Updater], sampler: BatchSampler,
                 shared_rng: torch.Generator, rng: torch.Generator, device: torch.device) -> None:
        self.built = built
        self.updaters = updaters
        """Player -> its optimizer and grad scaler (the players some phase trains)."""
        self.sampler = sampler
        self.shared_rng = shared_rng
        """The latent stream every process shares (the run's only stream in one process)."""
        self.rng = rng
        """This process's own stream (``shared_rng`` itself in one process)."""
        self.device = device
        self.step = 0
        """Completed iterations (generator steps)."""
        self.updates = dict.fromkeys(updaters, 0)
        """Completed optimizer updates per player (lazy regularization counts the critic's)."""
        self.interval_start = 0
        """The step the current logging interval started at (the last log, or the resume)."""
        self.augment: CriticAugment | None = None
        """``augment.name``'s runtime: its stream and state are checkpointed (``rng.augment``, ``augment.*``)."""

    @classmethod
    def fresh(cls, cfg: RunConfig, built: BuiltRun, trained: list[str], data: TensorData, precision: Precision,
              dist: Dist) -> TrainState:
        """The state of a new run: an optimizer and a grad scaler for each of the ``trained`` players,
        the sampler over ``data``, and the RNG streams (under torch.distributed each process's own
        stream and global seed, :func:`process_seeds`)."""
        device = built.device
        updaters = {name: Updater(name, make_optimizer(cfg.optim.for_player(name), built.nets.get(name),
                                                       cfg.train.fused_optimizer), precision.scaler())
                    for name in trained}
        sampler = BatchSampler(data, cfg.train.batch_size, device, cfg.train.seed,
                               rank=dist.rank, world_size=dist.world_size)
        sampler.channels_last = built.channels_last
        # rng: per process (the same as shared_rng in one process); shared_rng: the same everywhere
        shared_rng = torch.Generator(device=device).manual_seed(cfg.train.seed + 1)
        rng = shared_rng
        if dist.enabled:
            own, global_seed = process_seeds(cfg.train.seed, dist.rank)
            rng = torch.Generator(device=device).manual_seed(own)
            torch.manual_seed(global_seed)  # distinct penalty draws per process
        return cls(built, updaters, sampler, shared_rng, rng, device)

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: u.optimizer for name, u in self.updaters.items()}

    @property
    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {name: u.scaler for name, u in self.updaters.items()}

    @property
    def interval_steps(self) -> int:
        """Iterations since the current logging interval started."""
        return self.step - self.interval_start

    @property
    def critic_steps(self) -> int:
        return self.updates.get(CRITIC, 0)

    def checkpoint(self, config: dict, precision: str) -> tuple[dict[str, Tensor], dict[str, str]]:
        """The tensors and metadata of a checkpoint of this state."""
        tensors: dict[str, Tensor] = {}
        meta: dict[str, str] = {
            "format": ck.FORMAT,
            "format_version": ck.FORMAT_VERSION,
            "step": str(self.step),
            "critic_steps": str(self.critic_steps),
            "updates": json.dumps(self.updates),
            "config": json.dumps(config),
            "versions": json.dumps(versions()),
            "data_spec": self.built.variant.data.to_json(),
            "precision": precision,
        }
        codes = codes_of(self.built.nets.generator)
        if codes:
            meta["codes"] = codes_to_json(codes)
        for prefix, module in network_sections(self.built).items():
            tensors.update(ck.module_tensors(prefix, module))
        for player, updater in self.updaters.items():
            state, scalars = ck.optimizer_state(f"optim.{player}", updater.optimizer)
            tensors.update(state)
            meta[f"optim.{player}"] = scalars
            meta[f"scaler.{player}"] = json.dumps(updater.scaler.state_dict())
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.latent"] = self.shared_rng.get_state()
        if self.augment is not None:
            tensors.update(self.augment.state())
        sampler_tensors, sampler_scalars = self.sampler.state()
        tensors.update({f"sampler.{k}": v for k, v in sampler_tensors.items()})
        meta["sampler"] = json.dumps(sampler_scalars)
        return tensors, meta

    def restore(self, ckpt: ck.Checkpoint, *, seed: int, rank: int = 0, distributed: bool = False) -> None:
        """Continue exactly from ``ckpt``: networks, EMA, optimizers, scalers, RNG streams,
        the sampler's position and the counters."""
        check_finite(ckpt)
        load_networks(ckpt, self.built, ema_required=True)
        try:
            updates = ckpt.json("updates") if "updates" in ckpt.metadata else {
                CRITIC: int(ckpt.metadata.get("critic_steps", 0)), "generator": ckpt.step}
            for player, updater in self.updaters.items():
                ck.load_optimizer_state(updater.optimizer, f"optim.{player}", ckpt.tensors,
                                        ckpt.metadata[f"optim.{player}"], required=updates.get(player, 0) > 0)
                scaler = ckpt.json(f"scaler.{player}")
                check_scaler_state(f"scaler.{player}", scaler, updater.scaler.is_enabled())
                updater.scaler.load_state_dict(scaler)
            torch.set_rng_state(ckpt.tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in ckpt.tensors:
                torch.cuda.set_rng_state(ckpt.tensors["rng.cuda"], self.device)
            self.shared_rng.set_state(ckpt.tensors["rng.latent"].to(self.shared_rng.get_state().device))
            if distributed:
                own, global_seed = process_seeds(seed, rank, ckpt.step)
                self.rng.manual_seed(own)
                torch.manual_seed(global_seed)
            if self.augment is not None:
                self.augment.restore(ckpt.tensors)
                if distributed:
                    self.augment.rng.manual_seed(process_seeds(seed, rank, ckpt.step)[0] + 2)
            self.sampler.restore(ckpt.section("sampler"), ckpt.json("sampler"))
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{ckpt.path}: cannot restore the training state: {exc}") from None
        self.step = self.interval_start = ckpt.step
        self.updates = {player: int(updates.get(player, 0)) for player in self.updaters}
