"""The core's own built-ins, registered through the same hooks as any plugin."""

from __future__ import annotations

from gancore import hookimpl
from gancore.augment import BUILTIN_AUGMENTS
from gancore.data.celeba import CelebA
from gancore.data.classic import CIFAR10, MNIST, FashionMNIST
from gancore.data.digits import Digits
from gancore.data.image_folder import ImageFolder
from gancore.data.mixtures import GaussianGrid, GaussianRing
from gancore.data.pack_source import Pack
from gancore.data.stylegan_zip import StyleGANZip
from gancore.data.torch_dataset import HFDataset, TorchDataset
from gancore.losses import BUILTIN_LOSSES
from gancore.metrics.manifold import MANIFOLD_METRICS
from gancore.metrics.modes import Modes
from gancore.metrics.quality import BUILTIN_METRICS
from gancore.regularizers import BUILTIN_REGULARIZERS
from gancore.translation import TRANSLATION_METRICS, DigitsPair, DigitsRestore, Paired, Unpaired


@hookimpl
def gancore_register_losses() -> list[type]:
    return list(BUILTIN_LOSSES)


@hookimpl
def gancore_register_datasets() -> list[type]:
    return [Digits, ImageFolder, GaussianRing, GaussianGrid, Unpaired, DigitsPair, DigitsRestore, Paired, Pack,
            MNIST, FashionMNIST, CIFAR10, CelebA, StyleGANZip, TorchDataset, HFDataset]


@hookimpl
def gancore_register_regularizers() -> list[type]:
    return list(BUILTIN_REGULARIZERS)


@hookimpl
def gancore_register_metrics() -> list[type]:
    return [Modes, *BUILTIN_METRICS, *MANIFOLD_METRICS, *TRANSLATION_METRICS]


@hookimpl
def gancore_register_augments() -> list[type]:
    return list(BUILTIN_AUGMENTS)
