"""Feature extractors for the sample-quality metrics, offline only.

``digits``: a small CNN trained deterministically on the real ``digits`` train split (32x32,
one channel), cached in the user's cache directory under a hash of its training recipe and the
data, so it is trained once per machine (a few seconds on a CPU); its provenance is the sha256
of its weights. ``inception``: torchvision's Inception-v3 architecture with weights from a
local ``.safetensors`` file the user gives; nothing is downloaded.

Images are converted to what the extractor takes before features are computed: channels
averaged (RGB -> gray) or repeated (gray -> RGB), then resized with bilinear filtering and
antialiasing; the resize filter and sizes are part of every result's provenance.
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

RESIZE = "bilinear-antialias"


def cache_dir() -> Path:
    """``$GANCORE_CACHE``, else ``$XDG_CACHE_HOME/gancore``, else ``~/.cache/gancore``."""
    if os.environ.get("GANCORE_CACHE"):
        return Path(os.environ["GANCORE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gancore"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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

    @property
    @abstractmethod
    def sha256(self) -> str:
        """Hash of the weights: two results compare only when their extractors' hashes match."""

    @abstractmethod
    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) for images already fitted to the extractor."""

    @torch.no_grad()
    def run(self, x: Tensor, batch: int = 256) -> tuple[Tensor, Tensor]:
        """(features [N, F], probabilities [N, classes]) in float64, for images in [-1, 1]."""
        feats, probs = [], []
        for i in range(0, len(x), batch):
            f, logits = self._forward(fit_images(x[i:i + batch], self.channels, self.image_size))
            feats.append(f.double())
            probs.append(torch.softmax(logits.double(), dim=1))
        return torch.cat(feats), torch.cat(probs)

    def provenance(self, input_size: int) -> dict[str, Any]:
        return {"extractor": self.name, "extractor_sha256": self.sha256, "extractor_image_size": self.image_size,
                "input_image_size": input_size, "resize_filter": RESIZE if input_size != self.image_size else "none"}


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp),
                  metadata={"test_accuracy": f"{accuracy:.4f}", "recipe": cls.name})
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file

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


_LOADED: dict[tuple[str, str | None], Extractor] = {}


def get_extractor(name: str, weights: str | None = None) -> Extractor:
    """The extractor ``name`` (``digits`` or ``inception``), loaded once per process."""
    key = (name, weights)
    if key not in _LOADED:
        if name == "digits":
            _LOADED[key] = DigitClassifier(Path(weights) if weights else None)
        elif name == "inception":
            _LOADED[key] = InceptionV3(weights)
        else:
            raise ConfigError(f"extractor: expected digits or inception, got {name!r}")
    return _LOADED[key]
