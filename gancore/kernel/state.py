"""The training state and its checkpoint schema.

:class:`TrainState` owns everything a resume needs: the networks and the EMA (through the
:class:`~gancore.kernel.build.BuiltRun`), one optimizer and one grad scaler per player, every RNG
stream, the data sampler's position and the counters. This module is the only place that knows
the checkpoint's key names; training, resume, ``sample``, ``translate`` and ``eval`` all go
through it.

Keys (format version 1; the ``updates`` entry was added later and is optional):

- tensors ``<network>.<state_dict key>`` for ``generator``, ``critic``, every other player, and
  ``ema``; ``optim.<player>.<param index>.<state key>``; ``rng.torch``, ``rng.cuda`` (CUDA runs),
  ``rng.latent``; ``sampler.<key>``;
- metadata ``format``, ``format_version``, ``step``, ``critic_steps``, ``updates`` (JSON: updates per
  player), ``config``, ``versions``, ``data_spec``, ``precision``, ``optim.<player>`` (JSON: the
  optimizer's non-tensor state), ``scaler.<player>`` (JSON), ``sampler`` (JSON), and ``codes`` (JSON:
  the generator's structured codes, :mod:`gancore.codes`; only when it takes any).
"""

from __future__ import annotations

import json
import platform
from importlib import metadata as md
from pathlib import Path

import torch
from torch import Tensor, nn

from gancore.codes import codes_of, codes_to_json
from gancore.errors import CheckpointError
from gancore.interfaces import DataSpec
from gancore.kernel import checkpoint as ck
from gancore.kernel.build import BuiltRun
from gancore.kernel.sampler import BatchSampler


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
    if built.ema is not None:
        sections["ema"] = built.ema
    return sections


def load_networks(ckpt: ck.Checkpoint, built: BuiltRun) -> None:
    """Load every network (and the EMA) of ``built`` from ``ckpt``. A checkpoint written without
    an EMA gives the EMA the generator's weights."""
    for prefix, module in network_sections(built).items():
        if prefix == "ema" and not ckpt.has("ema"):
            module.load_state_dict(built.nets.generator.state_dict())
            continue
        ckpt.load_module(prefix, module)


def data_spec(ckpt: ck.Checkpoint) -> DataSpec:
    """The data spec the checkpoint's networks were built for."""
    try:
        return DataSpec.from_json(ckpt.metadata["data_spec"])
    except KeyError:
        raise CheckpointError(f"{ckpt.path}: checkpoint metadata lacks 'data_spec'") from None
    except ValueError as exc:
        raise CheckpointError(f"{ckpt.path}: {exc}") from None


class TrainState:
    """Everything a resume needs, written and read as one checkpoint."""

    def __init__(self, built: BuiltRun, optimizers: dict[str, torch.optim.Optimizer],
                 scalers: dict[str, torch.amp.GradScaler], sampler: BatchSampler,
                 shared_rng: torch.Generator, rng: torch.Generator, device: torch.device) -> None:
        self.built = built
        self.optimizers = optimizers
        self.scalers = scalers
        self.sampler = sampler
        self.shared_rng = shared_rng
        """The latent stream every process shares (the run's only stream in one process)."""
        self.rng = rng
        """This process's own stream (``shared_rng`` itself in one process)."""
        self.device = device
        self.step = 0
        """Completed iterations (generator steps)."""
        self.updates = dict.fromkeys(optimizers, 0)
        """Completed optimizer updates per player (lazy regularization counts the critic's)."""

    @property
    def critic_steps(self) -> int:
        return self.updates.get("critic", 0)

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
        for player, optimizer in self.optimizers.items():
            state, scalars = ck.optimizer_state(f"optim.{player}", optimizer)
            tensors.update(state)
            meta[f"optim.{player}"] = scalars
            meta[f"scaler.{player}"] = json.dumps(self.scalers[player].state_dict())
        tensors["rng.torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        tensors["rng.latent"] = self.shared_rng.get_state()
        sampler_tensors, sampler_scalars = self.sampler.state()
        tensors.update({f"sampler.{k}": v for k, v in sampler_tensors.items()})
        meta["sampler"] = json.dumps(sampler_scalars)
        return tensors, meta

    def save(self, path: Path, config: dict, precision: str) -> None:
        tensors, meta = self.checkpoint(config, precision)
        ck.write_atomic(tensors, meta, path)

    def restore(self, ckpt: ck.Checkpoint, *, seed: int, rank: int = 0, distributed: bool = False) -> None:
        """Continue exactly from ``ckpt``: networks, EMA, optimizers, scalers, RNG streams,
        the sampler's position and the counters."""
        load_networks(ckpt, self.built)
        try:
            for player, optimizer in self.optimizers.items():
                ck.load_optimizer_state(optimizer, f"optim.{player}", ckpt.tensors, ckpt.metadata[f"optim.{player}"])
                self.scalers[player].load_state_dict(ckpt.json(f"scaler.{player}"))
            torch.set_rng_state(ckpt.tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in ckpt.tensors:
                torch.cuda.set_rng_state(ckpt.tensors["rng.cuda"], self.device)
            self.shared_rng.set_state(ckpt.tensors["rng.latent"].to(self.shared_rng.get_state().device))
            if distributed:
                own, global_seed = process_seeds(seed, rank, ckpt.step)
                self.rng.manual_seed(own)
                torch.manual_seed(global_seed)
            self.sampler.restore(ckpt.section("sampler"), ckpt.json("sampler"))
            updates = ckpt.json("updates") if "updates" in ckpt.metadata else {
                "critic": int(ckpt.metadata.get("critic_steps", 0)), "generator": ckpt.step}
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"{ckpt.path}: cannot restore the training state: {exc}") from None
        self.step = ckpt.step
        self.updates = {player: int(updates.get(player, 0)) for player in self.optimizers}
