"""Mode-dropping measures on extractor features: precision and recall (Kynkäänniemi et al. 2019) and
density and coverage (Naeem et al. 2020).

Each sample's neighbourhood is the ball reaching its k-th nearest neighbour in its own set.
Precision: the share of generated samples inside some real sample's ball; recall: the share of real
samples inside some generated sample's ball. Density: how many real balls hold each generated sample,
divided by k and averaged (1 when the sets match, above 1 where samples crowd dense regions);
coverage: the share of real samples whose ball holds at least one generated sample. A generator that
drops a mode keeps its precision and loses recall and coverage. Distances are Euclidean, computed in
blocks (never an N x N matrix at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore.lazy import lazy_module
from gancore.metrics import Metric
from gancore.metrics.quality import IMAGE_TASKS, ExtractorSettings, _extracted

if TYPE_CHECKING:
    from torch import Tensor

    from gancore.metrics import MetricContext

torch = lazy_module("torch")

BLOCK = 1024


def _distances(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a, b).clamp_min_(0)


def kth_neighbour_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"k = {k} needs more than {k} samples, got {len(x)}")
    x = x.float()
    return torch.cat([_distances(x[i:i + BLOCK], x).kthvalue(k + 1, dim=1).values for i in range(0, len(x), BLOCK)])


def balls_holding(queries: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """For each query, how many of the balls (``centres``, ``radii``) hold it."""
    q, c = queries.float(), centres.float()
    return torch.cat([(_distances(q[i:i + BLOCK], c) <= radii[None]).sum(1) for i in range(0, len(q), BLOCK)])


def nearest_distance(queries: Tensor, points: Tensor) -> Tensor:
    q, p = queries.float(), points.float()
    return torch.cat([_distances(q[i:i + BLOCK], p).min(1).values for i in range(0, len(q), BLOCK)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Kynkäänniemi et al.'s improved precision and recall of ``fake`` against ``real`` features."""
    precision = float((balls_holding(fake, real, kth_neighbour_radii(real, k)) > 0).double().mean())
    recall = float((balls_holding(real, fake, kth_neighbour_radii(fake, k)) > 0).double().mean())
    return precision, recall


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Naeem et al.'s density and coverage of ``fake`` against ``real`` features (balls around reals only)."""
    radii = kth_neighbour_radii(real, k)
    density = float(balls_holding(fake, real, radii).double().sum() / (k * len(fake)))
    coverage = float((nearest_distance(real, fake) <= radii).double().mean())
    return density, coverage


class PrecisionRecallSettings(ExtractorSettings):
    k: int = Field(3, ge=1, le=100, description="Neighbour that sets each sample's ball (3 in the paper).")


class PrecisionRecall(Metric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) on the extractor's features: the share of
    generated samples on the real manifold, and of real samples on the generated one."""

    name = "precision-recall"
    Config = PrecisionRecallSettings
    tasks = IMAGE_TASKS
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        _, fake, real, prov = _extracted(ctx, self.config)
        precision, recall = precision_recall(real.features, fake.features, self.config.k)
        return {"precision": precision, "recall": recall, **prov, "k": self.config.k}


class DensityCoverageSettings(ExtractorSettings):
    k: int = Field(5, ge=1, le=100, description="Neighbour that sets each real sample's ball (5 in the paper).")


class DensityCoverage(Metric):
    """Density and coverage (Naeem et al. 2020) on the extractor's features: robust to outliers among
    the real samples, balls around real samples only."""

    name = "density-coverage"
    Config = DensityCoverageSettings
    tasks = IMAGE_TASKS
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        _, fake, real, prov = _extracted(ctx, self.config)
        density, coverage = density_coverage(real.features, fake.features, self.config.k)
        return {"density": density, "coverage": coverage, **prov, "k": self.config.k}


MANIFOLD_METRICS: list[type[Metric]] = [PrecisionRecall, DensityCoverage]
