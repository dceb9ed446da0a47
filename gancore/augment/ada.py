"""ADA (Karras et al. 2020): stylegan2-ada-pytorch's ``training/augment.py`` pipeline ``bgc`` and its
adaptive probability."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import Field

from gancore.augment.diffaugment import per_image
from gancore.errors import ConfigError
from gancore.interfaces import Augment, AugmentSettings
from gancore.lazy import lazy_module

if TYPE_CHECKING:
    import torch as _torch
    from torch import Tensor

torch = lazy_module("torch")


class ADASettings(AugmentSettings):
    p: float | None = Field(
        None, ge=0.0, le=1.0, description="A fixed augmentation probability; null: adaptive, from 0, adjusted "
        "from r_t = E[sign(D(real))] toward target.")
    target: float = Field(0.6, gt=0.0, lt=1.0, description="The r_t that p is steered to (stylegan2-ada: 0.6).")
    interval: int = Field(4, ge=1, le=10**6, description="Adjust p every this many critic updates.")
    kimg: float = Field(
        100.0, gt=0.0, description="Thousands of images over which p can move by 1 (stylegan2-ada uses 500 "
        "for its runs of 25,000 kimg; gancore's runs are shorter).")
    xflip: float = Field(1.0, ge=0.0, description="Probability multiplier of x-flips.")
    rotate90: float = Field(1.0, ge=0.0, description="... of rotations by multiples of 90 degrees.")
    xint: float = Field(1.0, ge=0.0, description="... of integer translations.")
    scale: float = Field(1.0, ge=0.0, description="... of isotropic scaling.")
    rotate: float = Field(1.0, ge=0.0, description="... of arbitrary rotations.")
    aniso: float = Field(1.0, ge=0.0, description="... of anisotropic scaling.")
    xfrac: float = Field(1.0, ge=0.0, description="... of fractional translations.")
    brightness: float = Field(1.0, ge=0.0, description="... of brightness changes.")
    contrast: float = Field(1.0, ge=0.0, description="... of contrast changes.")
    lumaflip: float = Field(1.0, ge=0.0, description="... of luma flips.")
    hue: float = Field(1.0, ge=0.0, description="... of hue rotations (3-channel images).")
    saturation: float = Field(1.0, ge=0.0, description="... of saturation changes (3-channel images).")
    xint_max: float = Field(0.125, ge=0.0, description="Largest integer translation, a fraction of the side.")
    scale_std: float = Field(0.2, ge=0.0, description="Log2 std of isotropic scaling.")
    rotate_max: float = Field(1.0, ge=0.0, description="Largest rotation, a fraction of 180 degrees.")
    aniso_std: float = Field(0.2, ge=0.0, description="Log2 std of anisotropic scaling.")
    xfrac_std: float = Field(0.125, ge=0.0, description="Std of fractional translation, a fraction of the side.")
    brightness_std: float = Field(0.2, ge=0.0, description="Std of the brightness offset.")
    contrast_std: float = Field(0.5, ge=0.0, description="Log2 std of the contrast factor.")
    hue_max: float = Field(1.0, ge=0.0, description="Largest hue rotation, a fraction of 180 degrees.")
    saturation_std: float = Field(1.0, ge=0.0, description="Log2 std of the saturation factor.")


def _eye(n: int, like: Tensor, dim: int) -> Tensor:
    return torch.eye(dim, device=like.device, dtype=like.dtype).expand(n, dim, dim).clone()


def _mat(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """A batch of matrices from rows of per-sample tensors (shape [N]) and constants."""
    n = like.shape[0]
    cells = [[e if isinstance(e, torch.Tensor) else torch.full((n,), float(e), device=like.device, dtype=like.dtype)
              for e in row] for row in rows]
    return torch.stack([torch.stack(row, dim=-1) for row in cells], dim=-2)


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: Tensor) -> Tensor:
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def _rotate90(quarter: Tensor) -> Tensor:
    """Rotation by ``quarter`` * 90 degrees with exact entries (0, 1, -1)."""
    q = quarter.long() % 4
    c = torch.tensor([1.0, 0.0, -1.0, 0.0], device=quarter.device)[q].to(quarter.dtype)
    s = torch.tensor([0.0, 1.0, 0.0, -1.0], device=quarter.device)[q].to(quarter.dtype)
    return _mat([[c, -s, 0], [s, c, 0], [0, 0, 1]], quarter)


def _translate3d(t: Tensor) -> Tensor:
    return _mat([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def _scale3d(s: Tensor) -> Tensor:
    return _mat([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def _rotate3d(v: list[float], theta: Tensor) -> Tensor:
    vx, vy, vz = v
    s, c = torch.sin(theta), torch.cos(theta)
    cc = 1 - c
    return _mat([[vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
                 [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
                 [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
                 [0, 0, 0, 1]], theta)


def reflect_sample(x: Tensor, coords: Tensor) -> Tensor:
    """Bilinear samples of ``x`` ``[N, C, H, W]`` at ``coords`` ``[N, H, W, 2]`` (pixel indices, x then y),
    reflected about the edge pixels (stylegan2-ada's ``F.pad(mode="reflect")``), as
    ``grid_sample(..., padding_mode="reflection", align_corners=True)`` on index coordinates.

    Written with gathers: it is linear in ``x`` with weights that do not depend on it, so it is
    differentiable any number of times on every torch this project supports (``grid_sample``'s double
    backward, which R1 through the augmentation needs, is missing from older ones: stylegan2-ada's
    ``grid_sample_gradfix``)."""
    n, c, h, w = x.shape

    def reflect(v: Tensor, size: int) -> Tensor:  # about the edge pixels' centres: F.pad's "reflect"
        if size == 1:
            return torch.zeros_like(v)
        t = torch.remainder(v, 2 * (size - 1))
        return torch.where(t > size - 1, 2 * (size - 1) - t, t).clamp(0, size - 1)

    cx, cy = reflect(coords[..., 0], w), reflect(coords[..., 1], h)
    x0, y0 = cx.floor(), cy.floor()
    wx, wy = (cx - x0).to(x.dtype), (cy - y0).to(x.dtype)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = x.reshape(n, c, h * w)

    def at(yy: Tensor, xx: Tensor) -> Tensor:
        index = (yy * w + xx).reshape(n, 1, h * w).expand(n, c, h * w)
        return flat.gather(2, index).reshape(n, c, h, w)

    wx, wy = wx.unsqueeze(1), wy.unsqueeze(1)
    top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx
    bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


class ADA(Augment):
    """ADA (Karras et al. 2020): stylegan2-ada's geometric and colour pipeline ('bgc'), applied with
    probability p, adjusted from the critic's outputs on real images (r_t = E[sign(D(real))])."""

    name = "ada"
    Config = ADASettings

    def setup(self, device: _torch.device, channels: int) -> None:
        c = self.config
        colours = c.brightness or c.contrast or c.lumaflip or ((c.hue or c.saturation) and channels == 3)
        if colours and channels not in (1, 3):
            raise ConfigError(f"augment: ada's colour transforms take images of 1 or 3 channels, and the data "
                              f"have {channels}; set augment.brightness, contrast, lumaflip, hue and saturation to 0")
        self.channels = channels
        self.p = torch.full((), float(c.p if c.p is not None else 0.0), device=device)
        self.signs = torch.zeros((), device=device)
        """The sum of sign means seen since the last adjustment, and their count."""
        self.count = torch.zeros((), device=device)
        self.rt = torch.zeros((), device=device)

    @property
    def adaptive(self) -> bool:
        return self.config.p is None

    def observe(self, real_out: Tensor) -> None:
        if self.adaptive:
            self.signs += real_out.detach().float().sign().mean()
            self.count += 1

    def adjust(self, critic_updates: int, images: int, mean: Callable[[Tensor], Tensor]) -> None:
        c = self.config
        if not self.adaptive or critic_updates % c.interval:
            return
        signs, count = mean(torch.stack([self.signs, self.count])).unbind()
        rt = signs / count.clamp(min=1)
        move = torch.sign(rt - c.target) * (images * c.interval) / (c.kimg * 1000)
        self.p.copy_((self.p + torch.where(count > 0, move, torch.zeros_like(move))).clamp(0, 1))
        self.rt.copy_(torch.where(count > 0, rt, self.rt))
        self.signs.zero_()
        self.count.zero_()

    def state(self) -> dict[str, Tensor]:
        return {"p": self.p, "signs": self.signs, "count": self.count, "rt": self.rt}

    def load_state(self, tensors: dict[str, Tensor]) -> None:
        for key, value in self.state().items():
            value.copy_(tensors[key].to(value.device, value.dtype))
        if not self.adaptive:  # a fixed augment.p holds whatever the checkpoint had
            self.p.fill_(float(self.config.p))

    def log_values(self) -> dict[str, Tensor]:
        return {"p": self.p, **({"rt": self.rt} if self.adaptive else {})}

    def apply(self, x: Tensor, rng: _torch.Generator, groups: int) -> Tensor:
        n, _, h, w = x.shape
        c = self.config
        dev = x.device
        p = self.p

        def rand(*shape: int) -> Tensor:
            return torch.rand(n, *shape, generator=rng, device=dev)

        def randn(*shape: int) -> Tensor:
            return torch.randn(n, *shape, generator=rng, device=dev)

        def chosen(strength: float, *shape: int) -> Tensor:
            return rand(*shape) < strength * p

        zero, one = torch.zeros(n, device=dev), torch.ones(n, device=dev)
        g = _eye(n, zero, 3)  # output pixel (centred coordinates) -> input pixel
        if c.xflip:
            i = torch.floor(rand() * 2)
            i = torch.where(chosen(c.xflip), i, zero)
            g = g @ _scale2d(1 - 2 * i, one)
        if c.rotate90:
            i = torch.floor(rand() * 4)
            i = torch.where(chosen(c.rotate90), i, zero)
            g = g @ _rotate90(i)
        if c.xint:
            t = (rand(2) * 2 - 1) * c.xint_max
            t = torch.where(chosen(c.xint, 1), t, torch.zeros_like(t))
            g = g @ _translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if c.scale:
            s = torch.exp2(randn() * c.scale_std)
            s = torch.where(chosen(c.scale), s, one)
            g = g @ _scale2d(1 / s, 1 / s)
        p_rot = 1 - torch.sqrt((1 - c.rotate * p).clamp(0, 1))
        if c.rotate:
            theta = (rand() * 2 - 1) * math.pi * c.rotate_max
            theta = torch.where(rand() < p_rot, theta, zero)
            g = g @ _rotate2d(theta)
        if c.aniso:
            s = torch.exp2(randn() * c.aniso_std)
            s = torch.where(chosen(c.aniso), s, one)
            g = g @ _scale2d(1 / s, s)
        if c.rotate:
            theta = (rand() * 2 - 1) * math.pi * c.rotate_max
            theta = torch.where(rand() < p_rot, theta, zero)
            g = g @ _rotate2d(theta)
        if c.xfrac:
            t = randn(2) * c.xfrac_std
            t = torch.where(chosen(c.xfrac, 1), t, torch.zeros_like(t))
            g = g @ _translate2d(-t[:, 0] * w, -t[:, 1] * h)
        if c.xflip or c.rotate90 or c.xint or c.scale or c.rotate or c.aniso or c.xfrac:
            x = self._warp(x, g)
        return self._colour(x, rng, groups, rand, randn, chosen)

    @staticmethod
    def _warp(x: Tensor, g: Tensor) -> Tensor:
        n, _, h, w = x.shape
        ys = torch.arange(h, device=x.device, dtype=g.dtype) - (h - 1) / 2
        xs = torch.arange(w, device=x.device, dtype=g.dtype) - (w - 1) / 2
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1).reshape(1, h * w, 3)
        src = points @ g.transpose(1, 2)  # [N, HW, 3]
        coords = torch.stack([src[..., 0] + (w - 1) / 2, src[..., 1] + (h - 1) / 2], dim=-1).reshape(n, h, w, 2)
        return reflect_sample(x, coords)

    def _colour(self, x: Tensor, rng: _torch.Generator, groups: int, rand: Callable, randn: Callable,
                chosen: Callable) -> Tensor:
        c = self.config
        n = x.shape[0]
        zero, one = torch.zeros(n, device=x.device), torch.ones(n, device=x.device)
        m = _eye(n, zero, 4)
        touched = False
        if c.brightness:
            b = torch.where(chosen(c.brightness), randn() * c.brightness_std, zero)
            m = _translate3d(b) @ m
            touched = True
        if c.contrast:
            s = torch.where(chosen(c.contrast), torch.exp2(randn() * c.contrast_std), one)
            m = _scale3d(s) @ m
            touched = True
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=x.device) / math.sqrt(3)
        vv = torch.outer(v, v)
        eye4 = torch.eye(4, device=x.device)
        if c.lumaflip:
            i = torch.floor(rand(1, 1) * 2)
            i = torch.where(chosen(c.lumaflip, 1, 1), i, torch.zeros_like(i))
            m = (eye4 - 2 * vv * i) @ m
            touched = True
        if c.hue and self.channels == 3:
            theta = torch.where(chosen(c.hue), (rand() * 2 - 1) * math.pi * c.hue_max, zero)
            m = _rotate3d([1 / math.sqrt(3)] * 3, theta) @ m
            touched = True
        if c.saturation and self.channels == 3:
            s = torch.where(chosen(c.saturation, 1, 1), torch.exp2(randn(1, 1) * c.saturation_std),
                            torch.ones(n, 1, 1, device=x.device))
            m = (vv + (eye4 - vv) * s) @ m
            touched = True
        if not touched:
            return x
        m = m.to(x.dtype)
        shape = x.shape
        img = per_image(x, groups).reshape(n, groups, self.channels, -1)  # [N, G, c, HW]
        if self.channels == 3:
            out = m[:, None, :3, :3] @ img + m[:, None, :3, 3:]
        else:  # one channel: stylegan2-ada's mean of the RGB rows
            mono = m[:, :3, :].mean(dim=1, keepdim=True)  # [N, 1, 4]
            out = img * mono[:, None, :, :3].sum(dim=3, keepdim=True) + mono[:, None, :, 3:]
        return out.reshape(shape)
