"""Multi-process training on torch.distributed: DistributedDataParallel per network.

A run is distributed when it is launched by torchrun (``WORLD_SIZE`` > 1 in the environment):
``gancore run VARIANT --nproc N`` starts torchrun itself, or ``torchrun --nproc-per-node N -m
gancore run VARIANT --out DIR`` on each machine. Every process holds the whole model; the network
being updated in a phase runs wrapped in DistributedDataParallel (``broadcast_buffers=False``:
the critic sees real and generated batches in separate forward passes, and rebroadcasting
BatchNorm buffers between them would break that), so its gradients are averaged over processes
during the one backward of the phase; the other network runs unwrapped (frozen, nothing to
synchronise). The gradient penalty takes ``autograd.grad`` on its inputs and joins the phase's
single backward, which is what DDP supports (it does not support ``backward(create_graph=True)``).
Each process trains on its shard of a global batch: ``train.batch_size`` is per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from gancore.errors import ConfigError


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
            t /= self.world_size
        return t

    def any(self, flag: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            flag = flag.to(torch.int32)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return flag.bool()


def from_env(device_setting: str) -> Dist:
    """The process's place in a torchrun launch (one process when not launched by torchrun);
    initialises the process group: NCCL for CUDA, gloo for the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_available():
        raise ConfigError("--nproc: this torch build has no torch.distributed")
    from gancore.kernel.precision import resolve_device

    use_cuda = resolve_device(device_setting).type == "cuda"  # a CUDA device that is not there: one line
    if not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Dist(rank=rank, world_size=world, local_rank=local)


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that also exposes the wrapped network's own attributes (``sample_latent``, ...)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def per_network(module: nn.Module, fn: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """``fn`` applied to each network of a player: a ModuleDict player (CycleGAN's two generators)
    gets a new ModuleDict of the results; a network of it with nothing to train (all frozen by the
    variant) stays as it is (DDP refuses one). The raw modules are shared, so checkpoints and EMA
    see them unchanged."""
    if isinstance(module, nn.ModuleDict):
        return nn.ModuleDict({k: per_network(v, fn) for k, v in module.items()})
    if not any(p.requires_grad for p in module.parameters()):
        return module
    return fn(module)


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """DDP for each network of a player (see :func:`per_network`)."""
    return per_network(module, lambda m: _ddp(m, device))


def _ddp(module: nn.Module, device: torch.device) -> nn.Module:
    ids = [device.index] if device.type == "cuda" else None
    import inspect

    # broadcast_buffers=False; torch >= 2.13 calls it forward_sync_buffers (the buffers are still
    # synchronised once at construction, which is harmless: every process built the same model)
    if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters:
        return _DDP(module, device_ids=ids, forward_sync_buffers=False)
    return _DDP(module, device_ids=ids, broadcast_buffers=False)


def launch(nproc: int, args: list[str]) -> int:
    """Run ``python -m gancore run ARGS`` in ``nproc`` processes through torchrun (one machine).

    A failing run is reported once, by rank 0 (the other ranks keep their error to themselves), and
    the launcher exits with the failed process's code instead of printing torchrun's report."""
    import sys

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    parsed = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "gancore", "run",
                                           *args])
    import logging

    # torchrun's own lines about a failed child (SIGTERM sent, exit code, the report): rank 0 said it
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parsed)
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        sys.exit(failure.exitcode if isinstance(failure.exitcode, int) and failure.exitcode > 0 else 1)
    return 0
