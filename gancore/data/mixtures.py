"""2-D Gaussian mixtures for mode-collapse studies (the VEEGAN / PacGAN protocol)."""

from __future__ import annotations

import math
from abc import abstractmethod

from pydantic import Field

from gancore.data import DataSource, TensorData
from gancore.interfaces import Settings
from gancore.lazy import lazy_module

torch = lazy_module("torch")


class MixtureSettings(Settings):
    n_samples: int = Field(100_000, ge=100, le=10_000_000, description="Training points drawn.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of the drawn points (independent of train.seed).")


class Mixture(DataSource):
    """Equal-weight isotropic Gaussians at fixed centres; labels are the mode indices."""

    std: float
    data_kind = "vector"

    @abstractmethod
    def centres(self) -> torch.Tensor:
        """The mode centres, ``[K, 2]``."""

    def load(self) -> TensorData:
        centres = self.centres()
        g = torch.Generator().manual_seed(self.config.seed)
        mode = torch.randint(len(centres), (self.config.n_samples,), generator=g)
        x = centres[mode] + self.std * torch.randn(self.config.n_samples, 2, generator=g)
        return TensorData(x=x, y=mode, num_classes=len(centres), landmarks=centres, scale=self.std)


class GaussianRing(Mixture):
    """8 Gaussians on a circle of radius 2, std 0.02."""

    name = "gaussian-ring"
    Config = MixtureSettings
    std = 0.02

    def centres(self) -> torch.Tensor:
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return (2.0 * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


class GaussianGrid(Mixture):
    """25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05."""

    name = "gaussian-grid"
    Config = MixtureSettings
    std = 0.05

    def centres(self) -> torch.Tensor:
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(axis, axis)
