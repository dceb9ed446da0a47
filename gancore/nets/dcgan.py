"""DCGAN stacks (Radford et al. 2015): strided (transposed) convolutions, no pooling."""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from gancore.errors import ConfigError
from gancore.modules import Critic, Generator
from gancore.nets.attention import SelfAttention

Norm = Literal["batch", "layer", "instance", "none"]


def image_levels(image_size: int, key: str = "data.image_size") -> int:
    """Number of stride-2 stages between 4x4 and ``image_size`` (a power of two, at least 8)."""
    levels = math.log2(image_size) - 2 if image_size > 0 else -1
    if levels < 1 or levels != int(levels):
        raise ConfigError(f"{key}: DCGAN stacks need a power of two of at least 8, got {image_size}")
    return int(levels)


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # normalises over C, H and W of each sample, as in WGAN-GP
        return nn.GroupNorm(1, channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(Generator):
    """z -> 4x4 projection -> stride-2 transposed convs (BatchNorm + ReLU) -> tanh image.

    ``extra_dim`` widens the input (a conditional generator concatenates a label code to z).
    ``attention`` adds SAGAN self-attention on the last hidden feature maps (half the image side).
    """

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 32,
                 width: int = 64, extra_dim: int = 0, norm: Norm = "batch", attention: bool = False) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        levels = image_levels(image_size)
        ch = width * 2 ** (levels - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim + extra_dim, ch, 4, 1, 0, bias=norm == "none"),
            norm_layer(norm, ch),
            nn.ReLU(inplace=True),
        ]
        for _ in range(levels - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=norm == "none"),
                       norm_layer(norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        if attention:
            layers.append(SelfAttention(ch))
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class DCGANCritic(Critic):
    """Stride-2 convs with LeakyReLU(0.2), no norm on the first layer, one output per sample.

    ``norm="batch"`` is DCGAN's; WGAN-GP needs ``"layer"`` or ``"none"`` (a per-sample
    gradient penalty is wrong through BatchNorm). ``extra_channels`` widens the input (label
    maps for a conditional critic). ``out_dim`` > 1 gives ``[N, out_dim]`` embeddings.
    ``attention`` adds SAGAN self-attention after the first layer (half the image side).
    """

    def __init__(self, channels: int = 1, image_size: int = 32, width: int = 64,
                 norm: Norm = "batch", extra_channels: int = 0, out_dim: int = 1, attention: bool = False) -> None:
        super().__init__()
        levels = image_levels(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels + extra_channels, width, 4, 2, 1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        if attention:
            layers.append(SelfAttention(width))
        ch = width
        for _ in range(levels - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), norm_layer(norm, ch * 2),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.feature_dim = ch * 16
        self.head = nn.Conv2d(ch, out_dim, 4, 1, 0)
        self.out_dim = out_dim
        dcgan_init(self)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.head(self.features(x)).flatten(1)
        return out.squeeze(1) if self.out_dim == 1 else out
