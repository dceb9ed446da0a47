"""Batches drawn from a dataset, with resumable order.

In-memory float data sit on the training device. uint8 data (a pack) sit there too when they fit
``TensorData.resident_bytes``; otherwise they stay memory-mapped and each batch is gathered from
the file in a background thread while the previous step runs, then decoded to [-1, 1] on the
device. The order (and the flips) always come from the sampler's own generator, drawn in the same
sequence either way, so a pack gives the batches of the same images held in memory and resume is
exact: the checkpointed state is that after the batches handed out, not after the one gathered
ahead.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

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
        self.device = device
        self.encoded = data.encoded
        resident = not self.encoded or data.resident_bytes is None or self._nbytes(data) <= data.resident_bytes
        self.x = self._place(data.x, resident)
        self.y = data.y.to(device) if data.y is not None else None
        self.x_b = self._place(data.x_b, resident) if data.x_b is not None else None
        self.y_b = data.y_b.to(device) if data.y_b is not None else None
        self.flip = data.flip
        self.crop = data.crop_size
        self.stored = int(data.x.shape[-1]) if data.kind == "image" else 0
        if self.crop and not 0 < self.crop <= self.stored:
            raise ConfigError(f"data: crop size {self.crop} does not fit the {self.stored}-pixel stored images")
        self.paired = data.paired
        if self.paired and (data.x_b is None or len(data.x_b) != len(data)):
            raise ConfigError("data: paired data need as many images in x_b as in x")
        self.streams = [_Stream(len(data), batch_size * world_size, self.rng)]
        if self.x_b is not None and not self.paired:
            self.streams.append(_Stream(len(self.x_b), batch_size * world_size, self.rng))
        self._background: ThreadPoolExecutor | None = None if resident else ThreadPoolExecutor(1)
        self._ahead: tuple[dict, Future] | None = None
        self._handed: tuple[Tensor, list[tuple[Tensor, int]]] | None = None

    def _place(self, t: Tensor, resident: bool) -> Tensor:
        """Float data and resident uint8 data on the training device (a memory map's pages copied into
        memory on the CPU); other uint8 data stay where they are, gathered per batch."""
        if not resident:
            return t
        if self.encoded and self.device.type == "cpu":
            return t.clone()
        return t.to(self.device)

    @staticmethod
    def _nbytes(data: TensorData) -> int:
        return sum(t.numel() * t.element_size() for t in (data.x, data.x_b) if t is not None)

    def _shard(self, t: Tensor) -> Tensor:
        return t[self.rank * self.local:(self.rank + 1) * self.local] if self.world_size > 1 else t

    def _flip_mask(self) -> Tensor:
        return self._shard(torch.rand(self.local * self.world_size, generator=self.rng) < 0.5)

    def _offsets(self) -> Tensor:
        """Each sample's random crop: [local, 2] (top, left) in [0, stored - crop]."""
        span = self.stored - self.crop + 1
        return self._shard(torch.randint(0, span, (self.local * self.world_size, 2), generator=self.rng))

    def _draw(self) -> dict:
        """Everything random about the next batch, in a fixed order: indices, flips, then crops."""
        plan = {"idx": self._shard(self.streams[0].next())}
        if self.x_b is not None:
            plan["idx_b"] = plan["idx"] if self.paired else self._shard(self.streams[1].next())
        for key, wanted, draw in (("flip", self.flip, self._flip_mask), ("crop", self.crop, self._offsets)):
            if wanted:  # a pair shares its flip and its crop; unpaired domains draw their own
                plan[key] = draw()
                if self.x_b is not None:
                    plan[f"{key}_b"] = plan[key] if self.paired else draw()
        return plan

    @staticmethod
    def _rows(source: Tensor, idx: Tensor) -> Tensor:
        gather = getattr(source, "gather", None)
        if gather is not None and not isinstance(source, Tensor):
            return gather(idx)  # rows decoded from files in worker processes
        return source[idx.to(source.device)]

    def _gather(self, plan: dict) -> dict:
        """The batch's rows (uint8 or float, on their device), labels on the training device."""
        out = {"x": self._rows(self.x, plan["idx"])}
        if self.y is not None:
            out["y"] = self.y[plan["idx"].to(self.y.device)]
        if self.x_b is not None:
            out["x_b"] = self._rows(self.x_b, plan["idx_b"])
            if self.y_b is not None:
                out["y_b"] = self.y_b[plan["idx_b"].to(self.y_b.device)]
        return out

    def _cut(self, x: Tensor, offsets: Tensor) -> Tensor:
        """Each image's ``crop`` square at its (top, left), gathered in one indexing op."""
        offsets = offsets.to(x.device)
        span = torch.arange(self.crop, device=x.device)
        rows = (offsets[:, 0:1] + span)[:, None, :, None]
        cols = (offsets[:, 1:2] + span)[:, None, None, :]
        n = torch.arange(x.shape[0], device=x.device)[:, None, None, None]
        c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return x[n, c, rows, cols]

    def _on_device(self, x: Tensor, flip: Tensor | None, crop: Tensor | None = None) -> Tensor:
        if crop is not None:  # cut before decoding: fewer bytes to move and convert
            x = self._cut(x, crop)
        if self.encoded:
            x = TensorData.decoded(x.to(self.device, non_blocking=True))
        if flip is not None:
            x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _snapshot(self) -> tuple[Tensor, list[tuple[Tensor, int]]]:
        return self.rng.get_state(), [(stream.perm, stream.pos) for stream in self.streams]

    def next(self) -> Batch:
        if self._background is None:
            plan = self._draw()
            rows = self._gather(plan)
        else:
            if self._ahead is None:
                first = self._draw()
                self._ahead = (first, self._background.submit(self._gather, first))
            plan, pending = self._ahead
            self._handed = self._snapshot()  # the state a checkpoint taken after this batch records
            upcoming = self._draw()
            rows = pending.result()
            self._ahead = (upcoming, self._background.submit(self._gather, upcoming))
        batch = Batch(x=self._on_device(rows["x"], plan.get("flip"), plan.get("crop")), y=rows.get("y"))
        if self.x_b is not None:
            batch.x_b = self._on_device(rows["x_b"], plan.get("flip_b"), plan.get("crop_b"))
            batch.y_b = rows.get("y_b")
        return batch

    def state(self) -> tuple[dict[str, Tensor], dict[str, int]]:
        rng_state, streams = self._handed if self._handed is not None else self._snapshot()
        tensors = {"rng": rng_state}
        scalars = {}
        for i, (perm, pos) in enumerate(streams):
            tensors[f"perm{i}"] = perm.clone()
            scalars[f"pos{i}"] = pos
        return tensors, scalars

    def close(self) -> None:
        """Stop the background gathering and any decoding processes."""
        if self._ahead is not None:
            self._ahead[1].result()
            self._ahead = None
        if self._background is not None:
            self._background.shutdown()
        for source in (self.x, self.x_b):
            if source is not None and hasattr(source, "close") and not isinstance(source, Tensor):
                source.close()

    def restore(self, tensors: dict[str, Tensor], scalars: dict[str, int]) -> None:
        for i, stream in enumerate(self.streams):
            perm, pos = tensors[f"perm{i}"], scalars[f"pos{i}"]
            if perm.numel() != stream.n:
                raise ValueError("the dataset size differs from the checkpointed run's")
            if perm.dtype != torch.int64 or perm.dim() != 1 or not torch.equal(perm.sort().values,
                                                                              torch.arange(stream.n)):
                raise ValueError(f"tensor 'sampler.perm{i}' is not an order of the {stream.n} samples "
                                 f"({perm.dtype}, shape {list(perm.shape)})")
            if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos <= stream.n:
                raise ValueError(f"metadata sampler.pos{i} must be an integer in 0..{stream.n}, found {pos!r}")
            stream.perm = perm.clone()
            stream.pos = pos
        rng = tensors["rng"]
        if rng.dtype != torch.uint8 or rng.shape != self.rng.get_state().shape:
            raise ValueError(f"tensor 'sampler.rng' is not a generator state ({rng.dtype}, shape {list(rng.shape)})")
        self.rng.set_state(rng)
        if self._ahead is not None:
            self._ahead[1].result()
        self._ahead = None  # the batch gathered ahead belonged to the old position
        self._handed = None
