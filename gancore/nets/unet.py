"""The U-Net (Ronneberger et al. 2015) as pix2pix uses it: an image-to-image generator whose
decoder sees the encoder's feature maps through skip connections."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gancore.errors import ConfigError
from gancore.modules import Generator
from gancore.nets.attention import SelfAttention
from gancore.nets.dcgan import Norm, norm_layer


class KeptDropout(nn.Module):
    """Dropout that stays on in eval mode (pix2pix's test-time noise)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.dropout(x, self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}, kept at test time"


class UNetGenerator(Generator):
    """``depth`` stride-2 conv stages down (LeakyReLU 0.2), as many transposed-conv stages up
    (ReLU), each up stage concatenating the matching down stage's output; tanh image out.

    Channels double per stage from ``width`` up to ``8 * width``. ``attention`` puts a SAGAN
    self-attention block on the bottleneck. The image side must be a multiple of ``2**depth``; at
    ``2**depth`` the bottleneck is 1x1 and sees the whole image (pix2pix's innermost stage, which
    like the outermost has no norm). ``dropout`` > 0 drops that share of the activations after the
    three innermost up stages, in training *and* at test time: pix2pix's only source of noise.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 32, depth: int = 3,
                 norm: Norm = "instance", attention: bool = False, image_size: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if image_size is not None and image_size % 2**depth:
            raise ConfigError(f"data.image_size: a U-Net of depth {depth} needs a multiple of {2**depth}, "
                              f"got {image_size}")
        chans = [min(width * 2**i, width * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        prev = in_channels
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = [nn.Conv2d(prev, ch, 4, 2, 1)]
            if 0 < i < depth - 1:  # as pix2pix: no norm on the outermost and the innermost stage
                layers.append(norm_layer(norm, ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))
            prev = ch
        self.attention = SelfAttention(chans[-1]) if attention else nn.Identity()
        self.up = nn.ModuleList()
        for i in reversed(range(1, depth)):
            # input: the deeper stage's output (plus its skip, except at the bottleneck)
            in_ch = chans[i] if i == depth - 1 else chans[i] * 2
            stage: list[nn.Module] = [nn.ConvTranspose2d(in_ch, chans[i - 1], 4, 2, 1), norm_layer(norm, chans[i - 1])]
            if dropout > 0 and len(self.up) < 3:
                stage.append(KeptDropout(dropout))
            self.up.append(nn.Sequential(*stage, nn.ReLU(inplace=True)))
        last_in = chans[0] if depth == 1 else chans[0] * 2
        self.out = nn.Sequential(nn.ConvTranspose2d(last_in, out_channels, 4, 2, 1), nn.Tanh())

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = self.attention(skips.pop())
        for stage in self.up:
            x = torch.cat([stage(x), skips.pop()], dim=1)
        return self.out(x)
