"""Translation metrics: how much of the source a translation keeps (preservation) and how well the
two directions undo each other (reconstruction)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gancore.errors import ConfigError
from gancore.metrics import Metric
from gancore.metrics.quality import ClassifierSettings, logistic, pixels

if TYPE_CHECKING:
    from gancore.metrics import MetricContext


class Preservation(Metric):
    """Translation runs: the share of held-out A images whose translation a classifier trained on
    *real* B images (never on translations) assigns to the source's hidden label."""

    name = "preservation"
    Config = ClassifierSettings
    tasks = ("translate",)
    default_for = ("translate",)
    higher_is_better = True

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        size = self.config.classifier_size
        test, split = ctx.real("test")
        train, _ = ctx.real("train")
        if test.y is None or train.y_b is None:
            raise ConfigError(f"preservation: data source {ctx.dataset!r} has no hidden labels "
                              "(digits-pair has)")
        judge = logistic(pixels(train.x_b, size), train.y_b.numpy())
        fake_b = ctx.images("test")[0]
        return {"preservation": float((judge.predict(pixels(fake_b, size)) == test.y.numpy()).mean()),
                "judge_accuracy_on_real_b": float(judge.score(pixels(test.x_b, size), test.y_b.numpy())),
                "classifier": f"logistic-regression-{size}x{size}", "n_samples": len(fake_b), "real_split": split}


class Reconstruction(Metric):
    """Translation runs with both directions: mean |F(G(a)) - a| and |G(F(b)) - b| on held-out
    images (pixels in [-1, 1])."""

    name = "reconstruction"
    tasks = ("translate",)
    default_for = ("translate",)
    higher_is_better = False

    def compute(self, ctx: MetricContext) -> dict[str, Any]:
        test, split = ctx.real("test")
        try:
            rec_a = ctx.translate(ctx.images("test")[0], "b2a")
        except ConfigError as exc:
            raise ConfigError(f"reconstruction: {exc}") from None
        rec_b = ctx.translate(ctx.translate(test.x_b, "b2a"), "a2b")
        return {"reconstruction_l1_a": float((rec_a - test.x).abs().mean()),
                "reconstruction_l1_b": float((rec_b - test.x_b).abs().mean()),
                "n_samples": len(test.x), "real_split": split}


TRANSLATION_METRICS: list[type[Metric]] = [Preservation, Reconstruction]
