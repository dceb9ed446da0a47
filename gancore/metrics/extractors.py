"""Feature extractors for the sample-quality metrics, offline only.

``fid-inception``: the standard FID network (TensorFlow's Inception graph as pytorch-fid and
torch-fidelity port it, :mod:`gancore.metrics.fid_inception`), weights from a local file made by
``gancore weights convert``; what papers' FID values are computed with. ``digits``: a small CNN
trained deterministically on the real ``digits`` train split (32x32, one channel), cached in the
user's cache directory under a hash of its training recipe and the data, so it is trained once per
machine (a few seconds on a CPU); its provenance is the sha256 of its weights. ``inception``:
torchvision's Inception-v3 architecture with weights from a local ``.safetensors`` file (needs
torchvision; not the FID network, so its values are not papers'); nothing is downloaded.

Images in [-1, 1] are first quantised to uint8 as a saved image would be (``x * 127.5 + 128``,
clamped and truncated: stylegan2-ada's rounding; ``quantize = false`` skips it), then converted to
what the extractor takes: ``fid-inception`` repeats gray to RGB and resizes with TensorFlow 1.x's
bilinear filter; the others average or repeat channels and resize bilinearly with antialiasing.
The quantisation, the filter and the sizes are part of every result's provenance.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancore.errors import ConfigError
from gancore.files import atomic_path, file_sha256

RESIZE = "bilinear-antialias"
QUANTIZATION = "uint8 (x * 127.5 + 128, clamped to [0, 255], truncated)"


def to_uint8(x: Tensor) -> Tensor:
    """Images in [-1, 1] to the uint8 levels a saved image holds (stylegan2-ada's conversion)."""
    return (x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def cache_dir() -> Path:
    """``$GANCORE_CACHE``, else ``$XDG_CACHE_HOME/gancore``, else ``~/.cache/gancore``."""
    if os.environ.get("GANCORE_CACHE"):
        return Path(os.environ["GANCORE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gancore"


def fit_images(x: Tensor, channels: int, size: int) -> Tensor:
    """Images in [-1, 1] to ``channels`` and ``size`` x ``size`` (bilinear, antialiased)."""
    x = x.float()
    if x.dim() != 4:
        raise ConfigError(f"metric: expected images [N, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.mean(1, keepdim=True).expand(-1, channels, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class Extractor(ABC):
    """Maps images to features (for FID/KID) and class probabilities (for IS, label accuracy)."""

    name: str
    channels: int
    image_size: int
    num_classes: int
    resize_filter: str = RESIZE
    quantize: bool = True
    """Round images to uint8 levels before features (the papers' protocol: they score saved images)."""
    device: Any = "cpu"

    @property
    @abstractmethod
    def sha256(self) -> str:
        """Hash of the weights: two results compare only when their extractors' hashes match."""

    @abstractmethod
    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) for images already fitted to the extractor."""

    def prepare(self, x: Tensor) -> Tensor:
        """Images in [-1, 1] as this extractor takes them (quantised, channels and size fitted)."""
        if self.quantize:
            x = to_uint8(x).float() / 127.5 - 1
        return fit_images(x, self.channels, self.image_size)

    def to(self, device: Any) -> Extractor:
        """Run on ``device`` from now on."""
        self.device = torch.device(device)
        self._module().to(self.device)
        return self

    def _module(self) -> nn.Module:
        return self.net  # type: ignore[attr-defined]

    def run(self, x: Tensor, batch: int = 256) -> tuple[Tensor, Tensor]:
        """(features [N, F], probabilities [N, classes]) in float64, for images in [-1, 1]."""
        feats, probs = [], []
        for i in range(0, len(x), batch):
            f, p = self.run_batch(x[i:i + batch])
            feats.append(f.double())
            probs.append(p.double())
        return torch.cat(feats), torch.cat(probs)

    @torch.no_grad()
    def run_batch(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, probabilities) in float32 on the CPU for one batch of images in [-1, 1]."""
        f, logits = self._forward(self.prepare(x.to(self.device)))
        return f.float().cpu(), torch.softmax(logits.double(), dim=1).float().cpu()

    def provenance(self, input_size: int) -> dict[str, Any]:
        resized = input_size != self.image_size
        return {"extractor": self.name, "extractor_sha256": self.sha256, "extractor_image_size": self.image_size,
                "input_image_size": input_size, "resize_filter": self.resize_filter if resized else "none",
                "quantization": QUANTIZATION if self.quantize else "none"}


class DigitNet(nn.Module):
    """conv(32)-pool-conv(64)-pool-fc(128)-fc(10) on 32x32 gray images; features are the 128-d layer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 16, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.body(x)
        return f, self.head(f)


class DigitClassifier(Extractor):
    """The ``digits`` extractor: :class:`DigitNet` trained on the digits' fixed train split."""

    name = "digits-cnn-v1"
    channels, image_size, num_classes = 1, 32, 10
    EPOCHS, BATCH, LR, SEED = 12, 64, 1e-3, 1234

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or self.default_path()
        if not self.path.is_file():
            self._train_and_save(self.path)
        from safetensors.torch import load_file

        self.net = DigitNet()
        try:
            self.net.load_state_dict(load_file(str(self.path)))
        except Exception as exc:  # a truncated or foreign file in the cache
            raise ConfigError(f"{self.path}: not a {self.name} weights file ({exc}); delete it to retrain") from None
        self.net.eval()
        self._sha = file_sha256(self.path)

    @property
    def sha256(self) -> str:
        return self._sha

    @classmethod
    def recipe_hash(cls) -> str:
        """Hash of everything that determines the weights: the recipe and the training data."""
        from gancore.data.digits import Digits

        data = Digits(Digits.Config(split="train", image_size=cls.image_size)).load()
        h = hashlib.sha256(f"{cls.name}:{cls.EPOCHS}:{cls.BATCH}:{cls.LR}:{cls.SEED}".encode())
        h.update(data.x.numpy().tobytes())
        h.update(data.y.numpy().tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def default_path(cls) -> Path:
        return cache_dir() / "extractors" / f"{cls.name}-{cls.recipe_hash()}.safetensors"

    @classmethod
    def train(cls) -> tuple[DigitNet, float]:
        """Train deterministically (fixed seed and order, CPU, one thread); returns the net and
        its accuracy on the held-out test split."""
        from gancore.data.digits import Digits

        train = Digits(Digits.Config(split="train")).load()
        test = Digits(Digits.Config(split="test")).load()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # reductions in a fixed order: the same weights on every run
        try:
            gen = torch.Generator().manual_seed(cls.SEED)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cls.SEED)
                net = DigitNet()
            opt = torch.optim.Adam(net.parameters(), lr=cls.LR)
            for _ in range(cls.EPOCHS):
                order = torch.randperm(len(train.x), generator=gen)
                for i in range(0, len(order), cls.BATCH):
                    idx = order[i:i + cls.BATCH]
                    # small random shifts so the judge tolerates imperfect centring
                    x = torch.roll(train.x[idx], shifts=tuple(torch.randint(-2, 3, (2,), generator=gen).tolist()),
                                   dims=(2, 3))
                    loss = F.cross_entropy(net(x)[1], train.y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            net.eval()
            with torch.no_grad():
                accuracy = float((net(test.x)[1].argmax(1) == test.y).float().mean())
        finally:
            torch.set_num_threads(threads)
        return net, accuracy

    @classmethod
    def _train_and_save(cls, path: Path) -> None:
        from safetensors.torch import save_file

        net, accuracy = cls.train()
        with atomic_path(path) as tmp:  # a concurrent reader never sees half a file
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                      metadata={"test_accuracy": f"{accuracy:.4f}", "recipe": cls.name})

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x)


class InceptionV3(Extractor):
    """torchvision's Inception-v3 with user-supplied weights (``.safetensors``); pool3 features
    (2048-d) and the 1000-way logits at 299x299. Values are comparable between gancore runs with
    the same weights hash, not with numbers computed with TensorFlow's FID Inception."""

    name = "inception-v3"
    channels, image_size, num_classes = 3, 299, 1000

    def __init__(self, weights: str | None) -> None:
        if not weights:
            raise ConfigError("extractor inception: set its weights to a local .safetensors file of "
                              "torchvision's inception_v3 (gancore never downloads weights)")
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(f"weights: {path} does not exist (expected a local .safetensors file)")
        if path.suffix != ".safetensors":
            raise ConfigError(f"weights: {path} is not a .safetensors file (pickled checkpoints are not loaded)")
        try:
            from torchvision.models import inception_v3
        except ImportError:
            raise ConfigError("extractor inception: needs torchvision (pip install torchvision)") from None
        from safetensors.torch import load_file

        self.net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            self.net.load_state_dict(load_file(str(path)))
        except Exception as exc:
            raise ConfigError(f"weights: {path} does not hold inception_v3 weights ({exc})") from None
        self.net.eval()
        self._sha = file_sha256(path)
        self._features: Tensor | None = None
        self.net.avgpool.register_forward_hook(lambda m, i, o: setattr(self, "_features", o.flatten(1)))

    @property
    def sha256(self) -> str:
        return self._sha

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = (x + 1) / 2  # ImageNet normalisation from [0, 1]
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        logits = self.net((x - mean) / std)
        return self._features, logits


class FIDInception(Extractor):
    """``fid-inception``: the standard FID network from a file made by ``gancore weights convert``;
    fed uint8 images (quantised unless ``quantize = false``), gray repeated to RGB, TensorFlow 1.x's
    bilinear resize to 299 inside the network, as torch-fidelity feeds it."""

    name = "fid-inception-2015-12-05"
    channels, image_size, num_classes = 3, 299, 1008
    resize_filter = "tf1-bilinear"

    def __init__(self, weights: str | None) -> None:
        from gancore.metrics.fid_inception import PUBLISHED_NAME, load_network

        if not weights:
            raise ConfigError("extractor fid-inception: set its weights (`--set "
                              "eval.metrics.fid.weights=FILE.safetensors`), "
                              f"a file made once by `gancore weights convert {PUBLISHED_NAME} --out FILE.safetensors`")
        self.net, self.metadata = load_network(weights)
        # channels-last convolutions: 1.8x the images/s of the default layout on this project's CPU
        self.net.to(memory_format=torch.channels_last)
        self._sha = file_sha256(Path(weights))

    @property
    def sha256(self) -> str:
        return self._sha

    def prepare(self, x: Tensor) -> Tensor:
        x = x.float()
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ConfigError(f"extractor fid-inception: expected images [N, 1 or 3, H, W], got {tuple(x.shape)}")
        x = to_uint8(x).float() if self.quantize else (x * 127.5 + 128).clamp(0, 255)
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.net(x)

    def provenance(self, input_size: int) -> dict[str, Any]:
        return {**super().provenance(input_size), "extractor_source_sha256": self.metadata.get("source_sha256", ""),
                "extractor_logits": "unbiased (torch-fidelity's logits_unbiased)"}


EXTRACTORS = ("fid-inception", "digits", "inception")
_LOADED: dict[tuple[str, str | None, bool], Extractor] = {}


def get_extractor(name: str, weights: str | None = None, quantize: bool = True) -> Extractor:
    """The extractor ``name`` (one of :data:`EXTRACTORS`), loaded once per process."""
    key = (name, weights, quantize)
    if key not in _LOADED:
        if name == "digits":
            ex: Extractor = DigitClassifier(Path(weights) if weights else None)
        elif name == "inception":
            ex = InceptionV3(weights)
        elif name == "fid-inception":
            ex = FIDInception(weights)
        else:
            raise ConfigError(f"extractor: expected one of {', '.join(EXTRACTORS)}, got {name!r}")
        ex.quantize = quantize
        _LOADED[key] = ex
    return _LOADED[key]
