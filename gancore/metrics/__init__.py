"""Evaluation metrics: the interface that ``gancore_register_metrics`` plugins implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor

from gancore.interfaces import Configurable


class Metric(Configurable, ABC):
    """A number (or a few) computed from generated samples and the real data.

    ``compute`` returns a flat dict of JSON-serialisable values, which include the provenance
    needed to compare results (extractor, number of samples, image size, dataset).
    """

    name: ClassVar[str]

    @abstractmethod
    def compute(self, fake: Tensor, real: Tensor, **context: Any) -> dict[str, Any]:
        """Compare ``fake`` samples with ``real`` ones."""
