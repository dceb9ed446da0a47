"""Evaluation metrics: the interface that ``gancore_register_metrics`` plugins implement.

A metric computes numbers from a :class:`MetricContext`, which draws samples from the run's
generator, loads the held-out real data, translates images, and hands out extractor features. The
evaluation runner (:mod:`gancore.evaluation`) implements that context; a metric codes against the
protocol here. Each metric says which tasks it applies to; the runner adds the common provenance
(dataset, split, number of samples, checkpoint step, gancore version).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gancore.interfaces import Configurable

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from gancore.data import TensorData
    from gancore.interfaces import DataSpec
    from gancore.metrics.features import FeatureSet
    from gancore.variant import Variant

#: The tasks a run can be: noise -> images, noise + label -> images, A -> B images, noise -> vectors.
TASKS = ("generate", "conditional", "translate", "vector")


def task_of(variant: Variant) -> str:
    """The task of a run of ``variant``: ``translate`` (two domains), ``conditional``, ``vector`` or ``generate``."""
    spec = variant.data
    if spec.domains == 2:
        return "translate"
    if variant.conditional:
        return "conditional"
    return "vector" if spec.kind == "vector" else "generate"


class MetricContext(Protocol):
    """What a metric may use of the run it evaluates. Samples, real data and extractor outputs are
    cached by the runner, so several metrics in one evaluation share one draw and one extractor pass."""

    n: int
    """Samples to draw (``--n``)."""
    seed: int
    """The seed of the samples."""
    step: int
    """The checkpoint's step."""

    @property
    def task(self) -> str:
        """The run's task (see :data:`TASKS`)."""

    @property
    def spec(self) -> DataSpec:
        """What the run's data looks like (kind, shape, classes, domains)."""

    @property
    def device(self) -> torch.device:
        """Where the networks are: put extractors there."""

    @property
    def dataset(self) -> str:
        """The name of the run's data source (for messages)."""

    def samples(self, n: int | None = None, labels: Tensor | None = None) -> Tensor:
        """``n`` samples (default :attr:`n`) from the generator (EMA if any), on the CPU; conditional runs
        draw every class equally often unless ``labels`` are given."""

    def sample_labels(self, n: int | None = None) -> Tensor:
        """The labels :meth:`samples` used for a conditional run."""

    def real(self, split: str = "test") -> tuple[TensorData, str]:
        """The run's real data of ``split`` (all of it when the source has no such split), decoded to
        [-1, 1], and the split used."""

    def images(self, split: str = "test") -> tuple[Tensor, Tensor, str]:
        """(generated, real, real split) images of the task: samples vs real images, or translations
        A -> B of the real A images vs the real B images."""

    def translate(self, x: Tensor, direction: str = "a2b") -> Tensor:
        """Images ``x`` translated by the run's generator(s) (EMA if any), on the CPU."""

    def features(self, extractor: Any, which: str, split: str = "test") -> FeatureSet:
        """Extractor features of the generated (``which="fake"``) or real (``"real"``) images, streamed."""

    def real_stats(self, extractor: Any, split: str) -> dict[str, Any]:
        """Where the real statistics of :meth:`features` came from (cache file, reused or not, key)."""

    def extract(self, extractor: Any, key: str, x: Tensor) -> tuple[Tensor, Tensor]:
        """Extractor outputs for ``x``, cached under ``key``."""


class Metric(Configurable, ABC):
    """A number (or a few) computed from a run's generator and the real data.

    ``compute`` returns a flat dict of JSON-serialisable values. Values that say how it was
    computed (extractor and its hash, image size and resize filter, sample counts) go in the
    dict too, under the keys the report and ``gancore eval`` show as provenance:
    see :data:`PROVENANCE_KEYS`.
    """

    name: ClassVar[str]
    tasks: ClassVar[tuple[str, ...]] = TASKS
    """Tasks this metric applies to (see :data:`TASKS`)."""
    default_for: ClassVar[tuple[str, ...]] = ()
    """Tasks for which ``eval.every`` uses this metric when ``eval.metrics`` is empty."""
    higher_is_better: ClassVar[bool | None] = None

    @abstractmethod
    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        """The metric's values and how they were computed."""


PROVENANCE_KEYS = (
    "extractor", "extractor_sha256", "extractor_image_size", "input_image_size", "resize_filter",
    "n_samples", "n_real", "real_split", "classifier", "subsets", "subset_size", "splits", "quantization",
    "extractor_source_sha256", "extractor_logits", "real_stats_cache", "real_stats_key", "real_stats_reused",
    "real_content_sha256", "k",
)
