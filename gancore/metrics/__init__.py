"""Evaluation metrics: the interface that ``gancore_register_metrics`` plugins implement.

A metric computes numbers from an :class:`gancore.evaluation.EvalContext`, which draws samples
from the run's generator, loads the held-out real data, translates images, and hands out the
feature extractors. Each metric says which tasks it applies to; the evaluation runner adds the
common provenance (dataset, split, number of samples, checkpoint step, gancore version).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from gancore.interfaces import Configurable

if TYPE_CHECKING:
    from gancore.evaluation import EvalContext

#: The tasks a run can be: noise -> images, noise + label -> images, A -> B images, noise -> vectors.
TASKS = ("generate", "conditional", "translate", "vector")


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
    def compute(self, ctx: EvalContext) -> dict[str, Any]:
        """The metric's values and how they were computed."""


PROVENANCE_KEYS = (
    "extractor", "extractor_sha256", "extractor_image_size", "input_image_size", "resize_filter",
    "n_samples", "n_real", "real_split", "classifier", "subsets", "subset_size", "splits", "quantization",
    "extractor_source_sha256", "extractor_logits", "real_stats_cache", "real_stats_key", "real_stats_reused",
    "real_content_sha256", "k",
)
