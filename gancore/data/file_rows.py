"""Images decoded from their files on demand: a dataset of any size without a pack.

:class:`FileRows` stands in for ``TensorData.x`` (uint8 ``[N, C, H, W]``): indexing it decodes the
rows asked for. The sampler gathers each batch through :meth:`FileRows.gather` in worker processes,
one batch ahead, with the order and flips from its checkpointed generator — so a folder streamed
this way gives the batches of the same folder held in memory, or of its pack, and resumes exactly.
"""

from __future__ import annotations

import multiprocessing
from typing import Any, Literal

import numpy as np
from pydantic import Field

from gancore.data import DecodePlan, ImageSettings, TensorData
from gancore.lazy import lazy_module

torch = lazy_module("torch")


def _decode(args: tuple[Any, Any]) -> np.ndarray:
    decode, path = args
    return np.asarray(decode(path), dtype=np.uint8)


class FileRows:
    """uint8 rows decoded from ``plan``'s files when indexed (``workers`` processes for batches)."""

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
    def dtype(self) -> torch.dtype:
        return torch.uint8

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


class FileImageSettings(ImageSettings):
    """Settings every file-backed image source shares: channels, and streaming from the files."""

    channels: Literal[1, 3] = Field(3, description="1 for grayscale, 3 for RGB.")
    stream: bool = Field(False, description="Decode each batch's files on the fly in worker processes (one batch "
                                            "ahead) instead of holding them all in memory; the same batches.")
    workers: int = Field(2, ge=1, le=64,
                         description="Decoding processes when stream is on (1: in the training process).")
    skip_bad: bool = Field(False, description="Leave out the files that do not decode (each named in a note) instead "
                                              "of stopping at the first, as `gancore data pack --skip-bad` does.")


def _skip_bad(plan: DecodePlan) -> tuple[DecodePlan, list[np.ndarray]]:
    """The plan without the files that fail to decode (and those files' images, decoded once)."""
    from dataclasses import replace

    from gancore.errors import ConfigError

    good, images, bad = [], [], []
    for i, path in enumerate(plan.files):
        try:
            images.append(_decode((plan.decode, path)))
            good.append(i)
        except ConfigError as exc:
            bad.append(str(exc).removeprefix("data.path: "))
    if not good:
        raise ConfigError(f"data.path: none of the {len(plan.files)} images decodes (first: {bad[0]})")
    notes = [*plan.notes, *(f"data.skip_bad: skipped {b}" for b in bad[:20])]
    if len(bad) > 20:
        notes.append(f"data.skip_bad: skipped {len(bad) - 20} more unreadable files")
    labels = None if plan.labels is None else [plan.labels[i] for i in good]
    return replace(plan, files=[plan.files[i] for i in good], labels=labels, notes=notes), images


def plan_data(plan: DecodePlan, settings: FileImageSettings) -> TensorData:
    """A file-backed source's data from its decode plan: decoded into memory now, or (``stream``)
    :class:`FileRows` decoded batch by batch in worker processes."""
    images: list[np.ndarray] | None = None
    if settings.skip_bad:
        plan, images = _skip_bad(plan)
    labels = None if plan.labels is None else torch.tensor(plan.labels, dtype=torch.int64)
    classes = plan.num_classes if labels is not None else 0
    if settings.stream:
        return TensorData(x=FileRows(plan, settings.workers), y=labels,  # type: ignore[arg-type]
                          num_classes=classes, resident_bytes=0, crop_size=plan.crop_size, notes=plan.notes)
    rows = FileRows(plan, workers=1)
    x = TensorData.decoded(rows._stack(images) if images is not None else rows[:])
    return TensorData(x=x, y=labels, num_classes=classes, crop_size=plan.crop_size, notes=plan.notes)
