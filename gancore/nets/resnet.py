"""Image-to-image networks: the CycleGAN ResNet generator and the PatchGAN critic."""

from __future__ import annotations

from torch import Tensor, nn

from gancore.modules import Critic, Generator
from gancore.nets.dcgan import Norm, norm_layer


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, norm: Norm) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(Generator):
    """Johnson et al.'s network as CycleGAN uses it: c7s1-w, d2w, d4w, n residual blocks,
    u2w, uw, c7s1-C, tanh (instance norm). Maps an image to an image of the same size.

    ``downsampling`` (2 in the paper) sets the stride-2 stages, and with them how far across the
    image one output pixel sees."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, blocks: int = 6,
                 norm: Norm = "instance", downsampling: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7),
                                   norm_layer(norm, width), nn.ReLU(True)]
        ch = width
        for _ in range(downsampling):
            layers += [nn.Conv2d(ch, ch * 2, 3, 2, 1), norm_layer(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResidualBlock(ch, norm) for _ in range(blocks)]
        for _ in range(downsampling):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1), norm_layer(norm, ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z)


class PatchCritic(Critic):
    """PatchGAN (Isola et al. 2017): a score per overlapping patch, ``[N, 1, h, w]``."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, norm: Norm = "instance") -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            nxt = width * min(2**i, 8)
            seq += [nn.Conv2d(ch, nxt, 4, stride, 1), norm_layer(norm, nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        seq += [nn.Conv2d(ch, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    @staticmethod
    def min_image_size(layers: int) -> int:
        """The smallest side a PatchGAN of ``layers`` takes (:func:`gancore.patchgan_min_image_size`)."""
        from gancore.variant import patchgan_min_image_size

        return patchgan_min_image_size(layers)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(x)
