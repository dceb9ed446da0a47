"""Multi-layer perceptrons for vector data (the 2-D mixtures)."""

from __future__ import annotations

from torch import Tensor, nn

from gancore.modules import Critic, Generator


def _stack(sizes: list[int], act: type[nn.Module] | nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), act() if isinstance(act, type) else act]
    return layers


class MLPGenerator(Generator):
    """z -> ``layers`` hidden ReLU layers of ``hidden`` units -> a linear output of ``out_dim``."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 512, layers: int = 3,
                 extra_dim: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(*_stack([latent_dim + extra_dim] + [hidden] * layers, nn.ReLU),
                                 nn.Linear(hidden, out_dim))

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z)


class MLPCritic(Critic):
    """x -> ``layers`` hidden LeakyReLU(0.2) layers -> ``out_dim`` outputs (``[N]`` when 1)."""

    def __init__(self, in_dim: int = 2, hidden: int = 512, layers: int = 3, out_dim: int = 1,
                 extra_dim: int = 0) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(*_stack([in_dim + extra_dim] + [hidden] * layers,
                                         nn.LeakyReLU(0.2)), nn.Linear(hidden, out_dim))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.net(x)
        return out.squeeze(1) if self.out_dim == 1 else out
