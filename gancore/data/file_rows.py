"""Images decoded from their files on demand: a dataset of any size without a pack.

:class:`FileRows` stands in for ``TensorData.x`` (uint8 ``[N, C, H, W]``): indexing it decodes the
rows asked for. The sampler gathers each batch through :meth:`FileRows.gather` in worker processes,
one batch ahead, with the order and flips from its checkpointed generator — so a folder streamed
this way gives the batches of the same folder held in memory, or of its pack, and resumes exactly.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import numpy as np
import torch

from gancore.data import DecodePlan


def _decode(args: tuple[Any, Any]) -> np.ndarray:
    decode, path = args
    return np.asarray(decode(path), dtype=np.uint8)


class FileRows:
    """uint8 rows decoded from ``plan``'s files when indexed (``workers`` processes for batches)."""

    dtype = torch.uint8

    def __init__(self, plan: DecodePlan, workers: int = 2) -> None:
        self.plan = plan
        self.shape = torch.Size((len(plan.files), *plan.shape))
        self.workers = workers
        self._pool: Any = None

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def element_size(self) -> int:
        return 1

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def _rows(self, index: Any) -> list[int]:
        if isinstance(index, slice):
            return list(range(len(self)))[index]
        return [int(i) for i in torch.as_tensor(index).reshape(-1).tolist()]

    def __getitem__(self, index: Any) -> torch.Tensor:
        """The rows at ``index`` (a slice or indices), decoded here."""
        rows = self._rows(index)
        return self._stack([_decode((self.plan.decode, self.plan.files[i])) for i in rows])

    def gather(self, index: torch.Tensor) -> torch.Tensor:
        """The rows at ``index``, decoded in the worker processes."""
        if self.workers <= 1:
            return self[index]
        if self._pool is None:
            # spawn: workers start clean, whatever threads the training process runs
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers)
        jobs = [(self.plan.decode, self.plan.files[i]) for i in self._rows(index)]
        return self._stack(self._pool.map(_decode, jobs, chunksize=max(1, len(jobs) // (4 * self.workers))))

    def _stack(self, images: list[np.ndarray]) -> torch.Tensor:
        if not images:
            return torch.empty((0, *self.shape[1:]), dtype=torch.uint8)
        return torch.from_numpy(np.stack(images))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
