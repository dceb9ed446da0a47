"""The VAE's encoder and decoder, and the module that holds both."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gancore import Generator
from gancore.nets import DCGANCritic, DCGANGenerator


class Encoder(nn.Module):
    """x -> (mu, log sigma^2) of q(z | x): a DCGAN critic's convolutional stack, then a linear layer."""

    def __init__(self, channels: int, image_size: int, width: int, latent_dim: int, norm: str = "batch") -> None:
        super().__init__()
        stack = DCGANCritic(channels, image_size, width, norm=norm)
        self.conv = stack.features  # its convolutions only: the critic's scoring head is not kept
        self.out = nn.Linear(stack.feature_dim, 2 * latent_dim)
        nn.init.normal_(self.out.weight, 0.0, 0.02)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.out(self.conv(x).flatten(1)).float().chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)  # exp stays finite in float32


class VAE(Generator):
    """Encoder and decoder together: ``forward(z)`` decodes (a generator of the prior's samples),
    :meth:`encode` gives q(z | x), :meth:`reconstruct` decodes the posterior mean."""

    def __init__(self, encoder: Encoder, decoder: DCGANGenerator) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim = decoder.latent_dim

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(x)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The decoded posterior mean of each image: the VAE's deterministic reconstruction."""
        mu, _ = self.encoder(x)
        return self.decoder(mu.to(x.dtype))


def reparameterize(mu: Tensor, logvar: Tensor, rng: torch.Generator) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) drawn from ``rng`` (the kernel's checkpointed stream)."""
    eps = torch.randn(mu.shape, generator=rng, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def kl_to_prior(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z | x) || N(0, I)) summed over the latent dimensions, averaged over the batch (float32)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1).mean()
