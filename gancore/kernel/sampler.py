"""Batches drawn from an in-memory dataset on the training device, with resumable order."""

from __future__ import annotations

import torch
from torch import Tensor

from gancore.data import TensorData
from gancore.errors import ConfigError
from gancore.interfaces import Batch


class _Stream:
    """Shuffled indices without replacement within an epoch; the last partial batch is dropped."""

    def __init__(self, n: int, batch_size: int, rng: torch.Generator) -> None:
        self.n, self.batch_size, self.rng = n, batch_size, rng
        self.perm = torch.randperm(n, generator=rng)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.batch_size > self.n:
            self.perm = torch.randperm(self.n, generator=self.rng)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx


class BatchSampler:
    """Draws batches of ``x`` (and, for two-domain data, independent batches of ``x_b``).

    The order comes from a dedicated CPU generator, so batches are the same for a given seed
    whatever else draws random numbers, and :meth:`state` / :meth:`restore` resume exactly.
    """

    def __init__(self, data: TensorData, batch_size: int, device: torch.device, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        sizes = {"x": len(data)} | ({"x_b": len(data.x_b)} if data.x_b is not None else {})
        for key, size in sizes.items():
            if batch_size * world_size > size:
                processes = f" x {world_size} processes" if world_size > 1 else ""
                raise ConfigError(
                    f"train.batch_size: {batch_size}{processes} is larger than the dataset ({size} samples in {key})"
                )
        # Under torch.distributed every process draws the same global batch of batch_size x
        # world_size indices (the same seed) and keeps its own slice: a distributed sampler that
        # gives N processes exactly the batches of one process with N times the batch.
        self.rank, self.world_size, self.local = rank, world_size, batch_size
        self.channels_last = False  # set by the trainer when train.channels_last applies
        self.rng = torch.Generator().manual_seed(seed)
        self.x = data.x.to(device)
        self.y = data.y.to(device) if data.y is not None else None
        self.x_b = data.x_b.to(device) if data.x_b is not None else None
        self.y_b = data.y_b.to(device) if data.y_b is not None else None
        self.flip = data.flip
        self.streams = [_Stream(len(data), batch_size * world_size, self.rng)]
        if self.x_b is not None:
            self.streams.append(_Stream(len(self.x_b), batch_size * world_size, self.rng))

    def _shard(self, t: Tensor) -> Tensor:
        return t[self.rank * self.local:(self.rank + 1) * self.local] if self.world_size > 1 else t

    def _flip(self, x: Tensor) -> Tensor:
        mask = self._shard(torch.rand(self.local * self.world_size, generator=self.rng) < 0.5).to(x.device)
        return torch.where(mask[:, None, None, None], x.flip(-1), x)

    def next(self) -> Batch:
        idx = self._shard(self.streams[0].next()).to(self.x.device)
        batch = Batch(x=self.x[idx], y=self.y[idx] if self.y is not None else None)
        if self.x_b is not None:
            idx_b = self._shard(self.streams[1].next()).to(self.x_b.device)
            batch.x_b = self.x_b[idx_b]
            batch.y_b = self.y_b[idx_b] if self.y_b is not None else None
        if self.flip:
            batch.x = self._flip(batch.x)
            if batch.x_b is not None:
                batch.x_b = self._flip(batch.x_b)
        if self.channels_last and batch.x.dim() == 4:
            batch.x = batch.x.contiguous(memory_format=torch.channels_last)
            if batch.x_b is not None:
                batch.x_b = batch.x_b.contiguous(memory_format=torch.channels_last)
        return batch

    def state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        tensors = {"rng": self.rng.get_state()}
        scalars = {}
        for i, stream in enumerate(self.streams):
            tensors[f"perm{i}"] = stream.perm.clone()
            scalars[f"pos{i}"] = stream.pos
        return tensors, scalars

    def restore(self, tensors: dict[str, Tensor], scalars: dict[str, int]) -> None:
        for i, stream in enumerate(self.streams):
            if tensors[f"perm{i}"].numel() != stream.n:
                raise ValueError("the dataset size differs from the checkpointed run's")
            stream.perm = tensors[f"perm{i}"].clone()
            stream.pos = int(scalars[f"pos{i}"])
        self.rng.set_state(tensors["rng"])
