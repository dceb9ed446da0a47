"""Evaluation during training: the configured metrics every ``eval.every`` steps and at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gancore import hookimpl

if TYPE_CHECKING:
    from gancore.kernel.run_view import Run


KEY = "gancore.periodic-eval"


class PeriodicEval:
    """Runs ``eval.metrics`` (or the task's defaults) on the current generator (EMA if kept):
    ``eval/*.json`` with provenance, one log record of ``eval/<metric>/<value>``, and the
    ``gancore_evaluated`` hook. Only at these steps, so the steps in between pay nothing; the
    training RNG streams are not touched."""

    @hookimpl
    def gancore_step_end(self, run: Run) -> None:
        cfg = run.config
        if not (cfg.eval.every and run.due(cfg.eval.every)):
            return
        from gancore.evaluation import EvalContext, default_metrics, run_metrics, write_results

        if KEY not in run.extras:
            ctx = EvalContext(host=run.host, built=run.built, cfg=cfg, step=run.step, n=cfg.eval.n,
                              seed=cfg.train.seed)
            metrics = cfg.eval_metrics or [(run.host.metrics.get(name), run.host.metrics.get(name).Config())
                                           for name in default_metrics(run.host, ctx.task)]
            run.extras[KEY] = (ctx, metrics)
        ctx, metrics = run.extras[KEY]
        ctx.step = run.step
        ctx.forget_generated()
        results = run_metrics(ctx, metrics, skip=None if cfg.eval_metrics else run.echo)
        write_results(run.run_dir, results)
        run.evaluated(results)
        record: dict[str, Any] = {"step": run.step}
        for r in results:
            record.update({f"eval/{r['metric']}/{k}": v for k, v in r["values"].items()
                           if isinstance(v, int | float) and not isinstance(v, bool)})
        run.log(record)
