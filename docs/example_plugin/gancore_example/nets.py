"""The example variant's networks. Subclassing ``nn.Module`` imports torch, so they live apart from
the registration module and load when ``build()`` first reads them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gancore import Critic, Generator


class MLPGenerator(Generator):
    def __init__(self, latent_dim: int, shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        self.latent_dim, self.shape = latent_dim, shape
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, int(torch.tensor(shape).prod())), nn.Tanh(),
        )

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPCritic(Critic):
    def __init__(self, shape: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(int(torch.tensor(shape).prod()), hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(x).squeeze(1)
