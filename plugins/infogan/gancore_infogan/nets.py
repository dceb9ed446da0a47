"""InfoGAN's networks: the generator taking codes beside its noise, the critic with a Q head."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from gancore import Code, Critic, Generator
from gancore.nets import DCGANCritic, DCGANGenerator

__all__ = ["InfoCritic", "InfoGenerator", "InfoScores"]


class InfoScores(NamedTuple):
    """The critic's output: adversarial scores ``[N]``, the Q head's categorical logits ``[N, K]`` (None
    without a categorical code) and continuous means ``[N, d]`` (None without continuous codes).
    Returned through ``forward``, so it passes the DDP wrapper and ``torch.compile``."""

    scores: Tensor
    code_logits: Tensor | None
    code_mean: Tensor | None


class InfoGenerator(Generator):
    """[z, one-hot(c_cat), c_cont] -> FC-BN-ReLU (the paper's 1024) -> a DCGAN stack. ``codes`` lists
    what it takes beside z."""

    def __init__(self, codes: tuple[Code, ...], noise_dim: int, channels: int, image_size: int, width: int,
                 hidden: int) -> None:
        super().__init__()
        self.codes = codes
        self.latent_dim = noise_dim
        inputs = noise_dim + sum(c.width for c in codes)
        self.fc = (nn.Sequential(nn.Linear(inputs, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
                   if hidden else nn.Identity())
        self.body = DCGANGenerator(hidden or inputs, channels, image_size, width)

    def forward(self, z: Tensor, y: Tensor | None = None, codes: dict[str, Tensor] | None = None) -> Tensor:
        if codes is None or set(codes) != {c.name for c in self.codes}:
            raise ValueError(f"InfoGenerator needs its codes ({', '.join(c.name for c in self.codes)})")
        return self.body(self.fc(torch.cat([z, *(c.encode(codes[c.name], z.dtype) for c in self.codes)], dim=1)))


class InfoCritic(Critic):
    """A DCGAN critic body and FC-BN-LeakyReLU (the paper's 1024) shared by two heads: D's score, and
    Q's code predictions (FC-BN-LeakyReLU-FC)."""

    def __init__(self, channels: int, image_size: int, width: int, categories: int, continuous: int,
                 hidden: int, q_hidden: int) -> None:
        super().__init__()
        self.body = DCGANCritic(channels, image_size, width, norm="batch")
        self.categories, self.continuous = categories, continuous
        dim = hidden or self.body.feature_dim
        self.fc = (nn.Sequential(nn.Flatten(), nn.Linear(self.body.feature_dim, hidden, bias=False),
                                 nn.BatchNorm1d(hidden), nn.LeakyReLU(0.2, inplace=True)) if hidden else nn.Flatten())
        self.head = nn.Linear(dim, 1)
        del self.body.head  # D's own head sits on the shared body (and its FC layer)
        self.q = nn.Sequential(nn.Linear(dim, q_hidden), nn.BatchNorm1d(q_hidden), nn.LeakyReLU(0.2, inplace=True),
                               nn.Linear(q_hidden, categories + continuous))

    def forward(self, x: Tensor, y: Tensor | None = None) -> InfoScores:
        h = self.fc(self.body.features(x))
        scores = self.head(h).squeeze(1)
        q = self.q(h)
        return InfoScores(scores, q[:, :self.categories] if self.categories else None,
                          q[:, self.categories:] if self.continuous else None)
