"""Self-attention over feature maps (Zhang et al. 2019, SAGAN)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SelfAttention(nn.Module):
    """SAGAN's block: every position attends to every other; ``x + gamma * attention(x)``.

    Query and key use ``channels // 8`` channels (at least 1). ``gamma`` starts at 0, so a freshly
    built network behaves as if the block were absent and learns how much attention to use.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # [N, HW, C']
        k = self.key(x).flatten(2)  # [N, C', HW]
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # [N, HW, HW]: row i = where position i looks
        v = self.value(x).flatten(2)  # [N, C, HW]
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(n, c, h, w)
        return x + self.gamma * out
