"""The standard FID network: TensorFlow's ``inception-2015-12-05`` graph as ported to PyTorch, without torchvision.

Papers' FID values come from this network, the one pytorch-fid and torch-fidelity load from
``pt_inception-2015-12-05-6726825d.pth``. Its blocks differ from torchvision's Inception-v3: the average
pools of the A, C and first E blocks ignore the zero padding (TensorFlow's), and the last E block pools its
pool branch with a max, not an average. It is fed as torch-fidelity feeds it: uint8 images (grayscale repeated
to three channels) resized to 299x299 with TensorFlow 1.x's bilinear resize (no half-pixel offset, no
antialiasing), then ``(x - 128) / 128``. Outputs: the 2048 pool3 features (FID, KID, precision and recall)
and the 1008 logits without their bias (torch-fidelity's ``logits_unbiased``, for the Inception Score).

The network's structure and the resize follow pytorch-fid's ``inception.py`` and torch-fidelity's
``feature_extractor_inceptionv3.py`` and ``interpolate_compat_tensorflow.py`` (Apache License 2.0).
Weights are read only from a ``.safetensors`` file made once by ``gancore weights convert``
(:func:`convert_weights`): after its sha256 is checked, the published file's pickle is read there as data
by :mod:`gancore.metrics.pth_reader` (nothing is unpickled: dicts of tensors are built, anything else is
refused).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancore.errors import ConfigError
from gancore.files import atomic_path, file_sha256
from gancore.metrics.pth_reader import read_state_dict
from gancore.pickle_bytes import RefusedPickle

#: torch.hub's convention: the published file's name carries the first hex digits of its sha256.
PUBLISHED_NAME = "pt_inception-2015-12-05-6726825d.pth"
PUBLISHED_SHA256_PREFIX = "6726825d"
FORMAT = "gancore-fid-inception-2015-12-05"
INPUT_SIZE = 299


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """``max_pool``: the last block's patch (TensorFlow's graph max-pools its pool branch)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The network; ``forward(x)`` takes float pixel values in [0, 255] at any size and returns
    (pool3 features ``[N, 2048]``, logits without bias ``[N, 1008]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = tf1_bilinear_resize(x, INPUT_SIZE)
        x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return features, features.mm(self.fc.weight.T)


def tf1_bilinear_resize(x: Tensor, size: int) -> Tensor:
    """TensorFlow 1.x's ``resize_bilinear(align_corners=False)``: output pixel i samples the input at
    ``i * in / out`` (no half-pixel offset), clamped at the border; no antialiasing."""
    if x.shape[-2:] == (size, size):
        return x

    def grid(n_in: int) -> tuple[Tensor, Tensor, Tensor]:
        pos = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.to(pos.dtype)

    y_lo, y_hi, dy = grid(x.shape[2])
    x_lo, x_hi, dx = grid(x.shape[3])
    rows_lo, rows_hi = x[:, :, y_lo, :], x[:, :, y_hi, :]
    top = rows_lo[:, :, :, x_lo] + (rows_lo[:, :, :, x_hi] - rows_lo[:, :, :, x_lo]) * dx.view(1, 1, 1, -1)
    bottom = rows_hi[:, :, :, x_lo] + (rows_hi[:, :, :, x_hi] - rows_hi[:, :, :, x_lo]) * dx.view(1, 1, 1, -1)
    return top + (bottom - top) * dy.view(1, 1, -1, 1)


def _expected(net: nn.Module | None = None) -> dict[str, tuple[int, ...]]:
    """The network's tensors and their shapes (BatchNorm's step counters aside)."""
    state = (net or FIDInceptionV3()).state_dict()
    return {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}


def convert_weights(src: str | Path, out: str | Path, *,
                    sha256_prefix: str = PUBLISHED_SHA256_PREFIX) -> dict[str, str]:
    """Convert the published PyTorch weights to ``out`` (``.safetensors``), once; returns its metadata.

    The file's sha256 must start with ``sha256_prefix`` (the published file's: torch.hub's check); it
    is then read by :func:`gancore.metrics.pth_reader.read_state_dict` (the pickle's opcodes read as data,
    nothing unpickled: a file that names anything but tensors and their dicts is refused), and its
    tensors must be exactly this network's.
    """
    from safetensors.torch import save_file

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise ConfigError(f"{src}: no such file (expected {PUBLISHED_NAME}, the weights pytorch-fid and "
                          "torch-fidelity publish)")
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out: {out} must end in .safetensors")
    digest = file_sha256(src)
    if not digest.startswith(sha256_prefix.lower()):
        raise ConfigError(f"{src}: sha256 {digest[:16]}... does not start with {sha256_prefix} (the published "
                          f"{PUBLISHED_NAME}'s); not the standard FID weights")
    try:
        state = read_state_dict(src)
    except RefusedPickle as exc:  # a global other than a tensor's, a damaged or truncated file
        raise ConfigError(f"{src}: refused: not a plain file of tensors ({str(exc)[:200]})") from None
    except OSError as exc:
        raise ConfigError(f"{src}: cannot be read ({exc.strerror or exc})") from None
    tensors = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    expected = _expected()
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ConfigError(f"{src}: not the FID Inception's tensors (missing {missing[:3]}, unexpected {extra[:3]})")
    wrong = [k for k, shape in expected.items() if tuple(tensors[k].shape) != shape]
    if wrong:
        k = wrong[0]
        raise ConfigError(f"{src}: {k} has shape {tuple(tensors[k].shape)}, expected {expected[k]}")
    metadata = {"format": FORMAT, "source": src.name, "source_sha256": digest}
    with atomic_path(out) as tmp:
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return metadata


def load_network(path: str | Path) -> tuple[FIDInceptionV3, dict[str, str]]:
    """The network with the weights of a file made by :func:`convert_weights`, and that file's metadata."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"eval.metrics.fid.weights: {path} does not exist (make it once with "
                          f"`gancore weights convert "
                          f"{PUBLISHED_NAME} --out {path.name}`)")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no items())
    except Exception as exc:
        raise ConfigError(f"eval.metrics.fid.weights: {path} is not a safetensors file ({str(exc)[:200]})") from None
    if metadata.get("format") != FORMAT:
        raise ConfigError(f"eval.metrics.fid.weights: {path} was not made by `gancore weights convert` (format "
                          f"{metadata.get('format')!r}, expected {FORMAT!r})")
    net = FIDInceptionV3()
    expected = _expected(net)
    if set(tensors) != set(expected) or any(tuple(tensors[k].shape) != s for k, s in expected.items()):
        raise ConfigError(f"eval.metrics.fid.weights: {path} does not hold the FID Inception's tensors")
    net.load_state_dict(tensors, strict=False)
    net.eval().requires_grad_(False)
    return net, metadata
