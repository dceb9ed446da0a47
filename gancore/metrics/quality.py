"""Built-in sample-quality metrics: FID, KID, Inception Score, TSTR, label accuracy (the translation
metrics, preservation and reconstruction, are in :mod:`gancore.translation.metrics`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from gancore.errors import ConfigError
from gancore.interfaces import Settings
from gancore.lazy import lazy_module
from gancore.metrics import Metric

if TYPE_CHECKING:
    from torch import Tensor

F = lazy_module("torch.nn.functional")
extractors = lazy_module("gancore.metrics.extractors")
stats = lazy_module("gancore.metrics.stats")  # scipy

if TYPE_CHECKING:
    from gancore.metrics import MetricContext

IMAGE_TASKS = ("generate", "conditional", "translate")


class ExtractorSettings(Settings):
    extractor: Literal["digits", "fid-inception", "inception"] = Field(
        "digits", description="digits: a CNN trained once on the real digits (cached); fid-inception: the "
        "standard FID network (TensorFlow's Inception as pytorch-fid and torch-fidelity port it; papers' "
        "values) from `weights`, a file made by `gancore weights convert`; inception: torchvision's "
        "Inception-v3 from a local weights file (needs torchvision; not papers' values)."
    )
    weights: str | None = Field(
        None, description="Local .safetensors weights: required for fid-inception and inception; for digits, "
        "a file instead of the cached one."
    )
    real_split: Literal["train", "test", "all"] = Field(
        "train", description="Split of the real data compared with (sources without splits use all)."
    )
    quantize: bool = Field(
        True, description="Round images to uint8 levels (x * 127.5 + 128, truncated) before the extractor, "
        "as a saved image holds them (stylegan2-ada's and torch-fidelity's protocol); false: the float values."
    )


def extractor_of(c: ExtractorSettings) -> Any:
    return extractors.get_extractor(c.extractor, c.weights, c.quantize)


def _extracted(ctx: MetricContext, c: ExtractorSettings) -> tuple[Any, Any, Any, dict]:
    """(extractor, generated features, real features, provenance), streamed, the real ones cached."""
    ex = extractor_of(c).to(ctx.device)
    fake = ctx.features(ex, "fake", c.real_split)
    real = ctx.features(ex, "real", c.real_split)
    prov = {**ex.provenance(int(ctx.spec.shape[-1])), "n_samples": len(fake), "n_real": len(real),
            **ctx.real_stats(ex, c.real_split)}
    return ex, fake, real, prov


class FID(Metric):
    """Fréchet distance between Gaussians fitted to extractor features of generated and real images
    (Heusel et al. 2017), in float64. For translation runs: translations A -> B vs real B."""

    name = "fid"
    Config = ExtractorSettings
    tasks = IMAGE_TASKS
    default_for = IMAGE_TASKS
    higher_is_better = False

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        _, fake, real, prov = _extracted(ctx, self.config)
        return {"fid": stats.frechet_distance(*fake.moments(), *real.moments()), **prov}


class KIDSettings(ExtractorSettings):
    subsets: int = Field(10, ge=1, le=10**4, description="Random subsets the MMD is averaged over.")
    subset_size: int = Field(1000, ge=2, le=10**6, description="Samples per subset (capped by the set sizes).")


class KID(Metric):
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel on the same features as FID; mean and std over subsets."""

    name = "kid"
    Config = KIDSettings
    tasks = IMAGE_TASKS
    higher_is_better = False

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        c = self.config
        _, fake, real, prov = _extracted(ctx, c)
        size = min(c.subset_size, len(fake), len(real))
        mean, std = stats.kernel_inception_distance(fake.features, real.features, subsets=c.subsets, subset_size=size,
                                                    seed=ctx.seed)
        return {"kid": mean, "kid_std": std, **prov, "subsets": c.subsets, "subset_size": size}


class ISSettings(ExtractorSettings):
    splits: int = Field(10, ge=1, le=1000, description="Chunks the score is averaged over.")


class InceptionScore(Metric):
    """Inception Score (Salimans et al. 2016) on the extractor's class probabilities: exp E KL(p(y|x) || p(y))."""

    name = "inception-score"
    Config = ISSettings
    tasks = IMAGE_TASKS
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        _, fake, real, prov = _extracted(ctx, self.config)
        mean, std = stats.inception_score(fake.probs, self.config.splits)
        real_mean, _ = stats.inception_score(real.probs, self.config.splits)
        return {"inception_score": mean, "inception_score_std": std, "inception_score_real": real_mean,
                **prov, "splits": self.config.splits}


class LabelAccuracy(Metric):
    """Conditional runs: the share of samples drawn for class k that the extractor's classifier
    calls k (every class drawn equally often)."""

    name = "label-accuracy"
    Config = ExtractorSettings
    tasks = ("conditional",)
    default_for = ("conditional",)
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        c = self.config
        ex = extractor_of(c).to(ctx.device)
        if ex.num_classes != ctx.spec.num_classes:
            raise ConfigError(f"label-accuracy.extractor: {ex.name} knows {ex.num_classes} classes, the data "
                              f"has {ctx.spec.num_classes}")
        labels = ctx.sample_labels()  # the labels ctx.features draws the samples with
        pred = ctx.features(ex, "fake", c.real_split).probs.argmax(1)
        per_class = [float((pred[labels == k] == k).double().mean()) for k in range(ctx.spec.num_classes)]
        return {"label_accuracy": float((pred == labels).double().mean()), "worst_class_accuracy": min(per_class),
                **ex.provenance(int(ctx.spec.shape[-1])), "n_samples": len(labels)}


class ClassifierSettings(Settings):
    classifier_size: int = Field(
        8, ge=2, le=64, description="Images are area-pooled to this side before the logistic regression "
        "(8: the digits' native resolution)."
    )


def pixels(x: Tensor, size: int) -> np.ndarray:
    x = (x.float().clamp(-1, 1) + 1) / 2
    if x.shape[-1] != size:
        x = F.adaptive_avg_pool2d(x, size)
    return x.reshape(len(x), -1).numpy()


def logistic(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=3000, C=0.5).fit(x, y)


class TSTR(Metric):
    """Train on synthetic, test on real (Esteban et al. 2017): a logistic regression trained on
    labelled samples, tested on the real test split; next to it the same classifier trained on the
    real train split (TRTR), the ceiling."""

    name = "tstr"
    Config = ClassifierSettings
    tasks = ("conditional",)
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        size = self.config.classifier_size
        labels = ctx.sample_labels()
        fake = ctx.samples(labels=labels)
        test, split = ctx.real("test")
        train, _ = ctx.real("train")
        if test.y is None:
            raise ConfigError(f"tstr: data source {ctx.dataset!r} has no labels")
        x_test, y_test = pixels(test.x, size), test.y.numpy()
        tstr = logistic(pixels(fake, size), labels.numpy()).score(x_test, y_test)
        trtr = logistic(pixels(train.x, size), train.y.numpy()).score(x_test, y_test)
        return {"tstr": float(tstr), "trtr": float(trtr), "classifier": f"logistic-regression-{size}x{size}",
                "n_samples": len(fake), "n_real": len(y_test), "real_split": split}


BUILTIN_METRICS: list[type[Metric]] = [FID, KID, InceptionScore, LabelAccuracy, TSTR]
