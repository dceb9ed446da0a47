"""CycleGAN's history pool of generated images (an ``nn.Module``: loaded when the critics are built)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["HistoryPool"]


class HistoryPool(nn.Module):
    """Shrivastava et al.'s image buffer: the critic sees a mix of new and older fakes.

    Until it holds ``size`` images, each new image is stored and returned; after that, each
    new image is returned with probability 1/2, else swapped with a stored one, which is
    returned. The pool is a buffer, so it is checkpointed and resumes exactly.
    """

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        out = fakes.clone()
        count = int(self.count)  # one sync per call: the pool is tiny and on the host's side of the step
        for i in range(len(fakes)):
            if count < self.size:
                self.images[count] = fakes[i]
                count += 1
            elif torch.rand(()) < 0.5:
                j = int(torch.randint(self.size, ()))
                out[i] = self.images[j]
                self.images[j] = fakes[i]
        self.count.fill_(count)
        return out
