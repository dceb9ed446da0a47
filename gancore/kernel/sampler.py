"""Batches drawn from an in-memory dataset on the training device, with resumable order."""

from __future__ import annotations

import torch

from gancore.data import TensorData
from gancore.errors import ConfigError
from gancore.interfaces import Batch


class BatchSampler:
    """Shuffled batches without replacement within an epoch; the last partial batch is dropped.

    The order comes from a dedicated CPU generator, so batches are the same for a given seed
    whatever else draws random numbers, and :meth:`state` / :meth:`restore` resume exactly.
    """

    def __init__(self, data: TensorData, batch_size: int, device: torch.device, seed: int) -> None:
        if batch_size > len(data):
            raise ConfigError(
                f"train.batch_size: {batch_size} is larger than the dataset ({len(data)} samples)"
            )
        self.x = data.x.to(device)
        self.y = data.y.to(device) if data.y is not None else None
        self.batch_size = batch_size
        self.rng = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(len(data), generator=self.rng)
        self.pos = 0

    def next(self) -> Batch:
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(len(self.perm), generator=self.rng)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size].to(self.x.device)
        self.pos += self.batch_size
        return Batch(x=self.x[idx], y=self.y[idx] if self.y is not None else None)

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
        return {"perm": self.perm.clone(), "rng": self.rng.get_state()}, {"pos": self.pos}

    def restore(self, tensors: dict[str, torch.Tensor], scalars: dict[str, int]) -> None:
        if tensors["perm"].numel() != len(self.perm):
            raise ValueError("the dataset size differs from the checkpointed run's")
        self.perm = tensors["perm"].clone()
        self.rng.set_state(tensors["rng"])
        self.pos = int(scalars["pos"])
