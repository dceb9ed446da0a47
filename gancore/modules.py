"""The network interfaces: :class:`Generator` and :class:`Critic` are ``nn.Module`` subclasses.

They live apart from :mod:`gancore.interfaces` because defining them imports torch; the CLI's
registration path (``gancore --help``, ``plugins``, ``config``) never does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

from gancore.codes import Code

__all__ = ["Critic", "Generator"]


class Generator(nn.Module, ABC):
    """A generator network: ``forward(z_or_x, y=None)`` returns samples in data space.

    Noise-driven generators set ``latent_dim`` and may override :meth:`sample_latent`. A generator
    that takes structured codes beside the noise (InfoGAN's) lists them in ``codes`` and takes them
    as ``forward(z, y=None, codes=None)`` (see :mod:`gancore.codes`).
    """

    latent_dim: int = 0
    codes: tuple[Code, ...] = ()
    """The named codes :meth:`forward` takes beside the noise; the kernel draws them per batch."""

    @abstractmethod
    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Map latent codes (or source-domain inputs) ``z`` and optional labels ``y`` to samples."""

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> Tensor:
        """Draw ``n`` latent codes; by default standard normal of shape ``[n, latent_dim]``."""
        if self.latent_dim <= 0:
            raise NotImplementedError(f"{type(self).__name__} takes no latent codes")
        return torch.randn(n, self.latent_dim, generator=generator, device=device)


class Critic(nn.Module, ABC):
    """A critic (discriminator) network: ``forward(x, y=None)``.

    Returns scores ``[N]``, embeddings ``[N, D]`` or patch scores ``[N, 1, h, w]``.
    """

    @abstractmethod
    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Score the samples ``x`` (with optional labels ``y``)."""
