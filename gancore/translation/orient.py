"""Orientation alignment for unpaired translation, found from the data.

Two unpaired domains can differ by a global geometric change as well as by style: B's images
may be A's turned a quarter, or mirrored. Adversarial + cycle (or TraVeL) objectives do not find
such a change: a convolutional generator starts near a local restyling, and every class
permutation composed with the change fits B's distribution equally well, so training settles on
a wrong one (measured: 19% label preservation on digits <-> quarter-turned digits, against
95-97% when generators that see the whole image are trained with pairs; benchmarks/README.md).

:func:`find_orientation` looks for the rotation (any angle) and optional mirror that make A's
images distributed most like B's, by the maximum mean discrepancy between the two image sets'
edge-strength maps (Sobel magnitude, so that intensity changes such as inversion do not count).
:class:`Oriented` puts that fixed transform in front of a generator as a checkpointed buffer.
The transform is adopted only when it at least halves the discrepancy of the identity; between
domains that differ only in style (photos, inverted or thickened digits) the identity stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from gancore.lazy import lazy_module
from gancore.variant import InitReport

if TYPE_CHECKING:
    from torch import Tensor

    from gancore.data import TensorData
    from gancore.translation.oriented import Oriented

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")

#: Images drawn from each domain for the search.
SAMPLES = 256
#: Fewer images than this in either domain: no search (the discrepancy would be noise).
MIN_IMAGES = 16
#: Side of the grayscale copies that are turned (larger images are averaged down first).
WORK_SIDE = 32
#: Side of the edge-strength maps compared.
FEATURE_SIDE = 16


def orientation_matrix(angle: float, mirror: bool = False) -> Tensor:
    """The ``[2, 3]`` sampling matrix (``F.affine_grid``'s convention) that turns an image by
    ``angle`` degrees (90 is ``torch.rot90(x, 1)``) and then, when ``mirror``, flips it left-right."""
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    # snap the quarter turns to exact values so that they move pixels without interpolation
    c, s = (round(c) if abs(c - round(c)) < 1e-12 else c), (round(s) if abs(s - round(s)) < 1e-12 else s)
    m = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=torch.float64)
    if mirror:
        m[:, 0] = -m[:, 0]
    return m.float()


def apply_orientation(x: Tensor, matrix: Tensor) -> Tensor:
    """``x`` ``[N, C, H, W]`` resampled through ``matrix`` (bilinear, edges extended)."""
    theta = matrix.to(device=x.device, dtype=x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def quarter_turn(matrix: Tensor) -> tuple[int, bool] | None:
    """``(k, mirror)`` when ``matrix`` is ``k`` quarter turns (then a mirror), else None."""
    m = matrix.detach().cpu().double()
    for k in range(4):
        for mirror in (False, True):
            if torch.allclose(m, orientation_matrix(90 * k, mirror).double(), atol=1e-6):
                return k, mirror
    return None


def turn(x: Tensor, k: int, mirror: bool) -> Tensor:
    """``k`` quarter turns, then a left-right mirror: pixels moved exactly, without resampling."""
    y = torch.rot90(x, k, dims=(2, 3)) if k % 4 else x
    return torch.flip(y, dims=[3]) if mirror else y


def edge_features(x: Tensor, side: int = FEATURE_SIDE) -> Tensor:
    """Each image's edge strength (Sobel magnitude of its grayscale), averaged down to
    ``side x side`` and scaled to unit length: ``[N, side * side]``."""
    p = F.pad(x.float().mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    dx = p[..., :, 2:] - p[..., :, :-2]  # Sobel: a central difference, smoothed [1, 2, 1] across
    dy = p[..., 2:, :] - p[..., :-2, :]
    gx = dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]
    gy = dy[..., :-2] + 2 * dy[..., 1:-1] + dy[..., 2:]
    magnitude = (gx**2 + gy**2 + 1e-8).sqrt()
    f = F.adaptive_avg_pool2d(magnitude, min(side, magnitude.shape[-1])).flatten(1)
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-8)


def _kernel_mean(x: Tensor, y: Tensor, bandwidth: float, same: bool) -> float:
    k = torch.exp(-torch.cdist(x, y).pow(2) / (2 * bandwidth**2))
    if same:  # unbiased: leave out the diagonal
        n = len(x)
        return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))
    return float(k.mean())


@dataclass(frozen=True)
class Orientation:
    """A turn by ``angle`` degrees followed by an optional left-right mirror, with the squared MMD
    between the turned A images and B at this orientation (``distance``) and at the identity."""

    angle: float = 0.0
    mirror: bool = False
    distance: float = 0.0
    identity_distance: float = 0.0

    @property
    def is_identity(self) -> bool:
        return not self.mirror and self.angle % 360 == 0

    def matrix(self) -> Tensor:
        return orientation_matrix(self.angle, self.mirror)

    def inverse_matrix(self) -> Tensor:
        """The matrix that undoes :meth:`matrix` (for the B -> A direction)."""
        m = torch.cat([self.matrix().double(), torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])
        return torch.linalg.inv(m)[:2].float()

    def describe(self) -> str:
        if self.is_identity:
            return f"identity (MMD^2 {self.identity_distance:.4f})"
        mirror = ", then mirror" if self.mirror else ""
        return (f"turn {self.angle:g} degrees{mirror} (MMD^2 {self.distance:.4f}, "
                f"{self.identity_distance:.4f} without it)")

    def to_dict(self) -> dict[str, Any]:
        return {"angle": self.angle, "mirror": self.mirror,
                "mmd2": self.distance, "mmd2_identity": self.identity_distance, "identity": self.is_identity}


def find_orientation(a: Tensor, b: Tensor, *, seed: int = 0, samples: int = SAMPLES, coarse: float = 10.0,
                     fine: float = 1.0, min_gain: float = 0.5, floor: float = 0.01) -> Orientation:
    """The orientation (turn, optional mirror) of A's images that best matches B's distribution.

    Turns of every ``coarse`` degrees, with and without a mirror, then every ``fine`` degrees
    around the best; each is scored by the unbiased squared MMD (Gaussian kernel, median
    bandwidth) between the edge maps of ``samples`` turned A images and ``samples`` B images.
    The best is adopted only when it lowers the identity's MMD^2 by at least ``min_gain`` of it
    and by more than ``floor``; otherwise the identity is returned (with both distances).
    """
    g = torch.Generator().manual_seed(seed)

    def pick(x: Tensor) -> Tensor:
        x = x[torch.randperm(len(x), generator=g)[:samples]].float().mean(1, keepdim=True)
        return F.adaptive_avg_pool2d(x, WORK_SIDE) if x.shape[-1] > WORK_SIDE else x

    xa, xb = pick(a), pick(b)
    fb = edge_features(xb)
    bandwidth = float(torch.cdist(fb, fb).median().clamp_min(1e-6))
    kbb = _kernel_mean(fb, fb, bandwidth, same=True)

    def mmd2(angle: float, mirror: bool) -> float:
        fa = edge_features(apply_orientation(xa, orientation_matrix(angle, mirror)))
        return _kernel_mean(fa, fa, bandwidth, True) + kbb - 2 * _kernel_mean(fa, fb, bandwidth, False)

    scores = {(0.0, False): mmd2(0.0, False)}
    steps = int(round(360 / coarse))
    for mirror in (False, True):
        for i in range(steps):
            key = (i * coarse, mirror)
            if key not in scores:
                scores[key] = mmd2(*key)
    (angle, mirror) = min(scores, key=scores.__getitem__)
    for i in range(1, int(round(coarse / fine))):
        for sign in (-1, 1):
            key = ((angle + sign * i * fine) % 360, mirror)
            if key not in scores:
                scores[key] = mmd2(*key)
    (angle, mirror) = min(scores, key=scores.__getitem__)
    identity, best = scores[(0.0, False)], scores[(angle, mirror)]
    if (angle, mirror) == (0.0, False) or identity - best < max(min_gain * identity, floor):
        return Orientation(0.0, False, identity, identity)
    return Orientation(float(angle), mirror, best, identity)


OrientMode = Literal["auto", "off"]


def orientation_setting() -> Any:
    """The ``orient`` setting of a translation variant (a pydantic field, default ``auto``)."""
    return Field("auto", description=(
        "auto: before training, find the turn (and mirror) that makes A's images distributed most like "
        "B's (MMD of edge maps) and put it in front of the A -> B generator (its inverse in front of "
        "B -> A) when it at least halves the identity's discrepancy; off: never."))


def orient_generators(data: TensorData, a2b: Oriented, b2a: Oriented | None = None) -> InitReport:
    """Find the orientation between ``data``'s two domains and set it on the generators
    (``a2b`` gets it, ``b2a`` its inverse); the report for :meth:`Variant.initialize`."""
    if data.x_b is None:
        raise ValueError("orient_generators needs two-domain data")
    if min(len(data.x), len(data.x_b)) < MIN_IMAGES:
        return InitReport("orientation", f"not searched: a domain has fewer than {MIN_IMAGES} images",
                          {"identity": True})
    found = find_orientation(data.x, data.x_b)
    a2b.set_matrix(found.matrix())
    if b2a is not None:
        b2a.set_matrix(found.inverse_matrix())
    return InitReport("orientation", found.describe(), found.to_dict())
