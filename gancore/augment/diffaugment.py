"""DiffAugment (Zhao et al. 2020) as the official ``DiffAugment_pytorch.py`` does it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from gancore.interfaces import Augment, AugmentSettings
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    import torch as _torch
    from torch import Tensor

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")


def per_image(x: Tensor, groups: int) -> Tensor:
    """``[N, C, H, W]`` as ``[N, groups, C / groups, H, W]``: each stacked image's channels apart."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w)


POLICIES = ("color", "translation", "cutout")


class DiffAugmentSettings(AugmentSettings):
    policy: str = Field(
        "color,translation,cutout", description="Comma-separated: color (brightness, saturation, contrast), "
        "translation (shifts of up to translation_ratio of the side, zero-padded), cutout (a square of "
        "cutout_ratio of the side set to zero); the paper's policy is all three.")
    translation_ratio: float = Field(0.125, ge=0.0, le=0.5, description="Largest shift, as a fraction of the side.")
    cutout_ratio: float = Field(0.5, ge=0.0, le=1.0, description="Side of the cut-out square, as a fraction.")

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        unknown = [p for p in parts if p not in POLICIES]
        if unknown or not parts:
            raise ValueError(f"expected a comma-separated list of {', '.join(POLICIES)}, got {value!r}")
        if len(set(parts)) != len(parts):
            raise ValueError(f"lists a policy twice: {value!r}")
        return ",".join(parts)


class DiffAugment(Augment):
    """DiffAugment (Zhao et al. 2020): colour, translation and cutout on every image the critic sees."""

    name = "diffaugment"
    Config = DiffAugmentSettings

    def apply(self, x: Tensor, rng: _torch.Generator, groups: int) -> Tensor:
        c = self.config
        for policy in c.policy.split(","):
            if policy == "color":
                x = self._brightness(x, rng)
                x = self._saturation(x, rng, groups)
                x = self._contrast(x, rng, groups)
            elif policy == "translation":
                x = self._translation(x, rng)
            else:
                x = self._cutout(x, rng)
        return x

    @staticmethod
    def _rand(x: Tensor, rng: _torch.Generator) -> Tensor:
        return torch.rand(x.shape[0], 1, 1, 1, generator=rng, device=x.device, dtype=torch.float32)

    def _brightness(self, x: Tensor, rng: _torch.Generator) -> Tensor:
        return x + (self._rand(x, rng) - 0.5).to(x.dtype)

    def _saturation(self, x: Tensor, rng: _torch.Generator, groups: int) -> Tensor:
        g = per_image(x, groups)
        mean = g.mean(dim=2, keepdim=True)
        factor = (self._rand(x, rng) * 2).to(x.dtype).unsqueeze(1)
        return ((g - mean) * factor + mean).reshape(x.shape)

    def _contrast(self, x: Tensor, rng: _torch.Generator, groups: int) -> Tensor:
        g = per_image(x, groups)
        mean = g.mean(dim=(2, 3, 4), keepdim=True)
        factor = (self._rand(x, rng) + 0.5).to(x.dtype).unsqueeze(1)
        return ((g - mean) * factor + mean).reshape(x.shape)

    def _translation(self, x: Tensor, rng: _torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        ratio = self.config.translation_ratio
        sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        ty = torch.randint(-sh, sh + 1, (n, 1, 1), generator=rng, device=x.device)
        tx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=rng, device=x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        # the official code's index arithmetic: a one-pixel zero border, indices clamped into it
        iy = (rows + ty + 1).clamp(0, h + 1).expand(n, h, w)
        ix = (cols + tx + 1).clamp(0, w + 1).expand(n, h, w)
        padded = F.pad(x, [1, 1, 1, 1])
        flat = (iy * (w + 2) + ix).reshape(n, 1, h * w).expand(n, x.shape[1], h * w)
        return padded.reshape(n, x.shape[1], -1).gather(2, flat).reshape(x.shape)

    def _cutout(self, x: Tensor, rng: _torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        ratio = self.config.cutout_ratio
        ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=rng, device=x.device)
        ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=rng, device=x.device)
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        # the square [o - size//2, o - size//2 + size), as the official code cuts it (it always meets the image)
        top, left = oy - ch // 2, ox - cw // 2
        inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
        return x * (~inside).unsqueeze(1).to(x.dtype)
