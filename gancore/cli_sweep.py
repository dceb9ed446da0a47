"""``gancore sweep``: hyperparameter search and multi-seed studies on Optuna; ``gancore sweep report``."""

from __future__ import annotations

from pathlib import Path

import click


class SweepGroup(click.Group):
    """``gancore sweep VARIANT ...`` runs a sweep (the ``run`` subcommand); ``gancore sweep report DIR``
    writes its report."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=SweepGroup)
def sweep() -> None:
    """Search hyperparameters with Optuna: `gancore sweep VARIANT --out DIR --param KEY=SPACE ...` trains
    each trial as an ordinary run under DIR/trials/NNNN/seed_S; `gancore sweep report DIR` writes
    DIR/report.html. The same command again continues the study."""


@sweep.command(name="run")
@click.argument("variant")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="The sweep's folder: trials/, sweep.json and (by default) the study's SQLite storage study.db.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A TOML, JSON or YAML config file: the base of every trial.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A setting of every trial, as `gancore run --set` (repeatable).")
@click.option("--preset", metavar="NAME", help="One of the variant's presets, under --config and --set.")
@click.option("--param", "params", multiple=True, metavar="KEY=SPACE",
              help="A searched key: choice(a,b,...), int(lo,hi), float(lo,hi) or loguniform(lo,hi), e.g. "
                   "--param optimizer.generator.lr='loguniform(1e-5,1e-3)' (repeatable).")
@click.option("--seeds", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Seeds per configuration (train.seed, train.seed+1, ...); the objective is their mean.")
@click.option("--metric", metavar="NAME[:KEY]",
              help="The objective: a registered metric (gancore list metrics), optionally one of its values "
                   "(e.g. modes:high_quality) [default: the task's first default metric].")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]),
              help="Which way is better [default: from the metric].")
@click.option("--trials", type=click.IntRange(1, 100000), default=20, show_default=True,
              help="Trials in the study (counted over every process sharing it; a grid has at most its size).")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Trials trained at once on this machine, each a separate process with its share of the cores.")
@click.option("--sampler", type=click.Choice(["tpe", "random", "grid"]), default="tpe", show_default=True,
              help="How trials are chosen (grid: every combination of choice/int spaces).")
@click.option("--pruner", type=click.Choice(["median", "none"]), default="median", show_default=True,
              help="median: stop a trial whose periodic evaluation is worse than the median of earlier trials "
                   "at the same step.")
@click.option("--eval-every", type=click.IntRange(1), default=None,
              help="Steps between a trial's evaluations [default: train.steps/5 with a pruner, else the end].")
@click.option("--storage", metavar="URL",
              help="Optuna storage shared by every sweep of this study: sqlite:///PATH, postgresql://..., "
                   "mysql://..., or journal:PATH (a journal file on a shared filesystem) [default: DIR/study.db].")
@click.option("--study", "study_name", default="gancore", show_default=True, help="The study's name in the storage.")
@click.option("--seed", "sampler_seed", type=int, default=0, show_default=True, help="The sampler's seed.")
def run_(variant: str, out: str, config_file: str | None, sets: tuple[str, ...], preset: str | None,
         params: tuple[str, ...], seeds: int, metric: str | None, direction: str | None, trials: int, jobs: int,
         sampler: str, pruner: str, eval_every: int | None, storage: str | None, study_name: str,
         sampler_seed: int) -> None:
    """Run (or continue) a sweep of VARIANT."""
    from gancore.sweep import SweepSettings, run_sweep

    settings = SweepSettings(
        variant=variant, out=Path(out), params=list(params), metric=metric, direction=direction, seeds=seeds,
        trials=trials, jobs=jobs, sampler=sampler, pruner=pruner, eval_every=eval_every, storage=storage,
        study=study_name, sampler_seed=sampler_seed, config=config_file, sets=list(sets), preset=preset)
    run_sweep(settings, echo=lambda m: click.echo(m, err=True))


@sweep.command()
@click.argument("sweep_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="The HTML file [default: DIR/report.html].")
def report(sweep_dir: str, out: str | None) -> None:
    """Write the sweep in DIR as one self-contained HTML page: the best configuration, every trial, the
    objective against each parameter, the optimisation history and the parameters' importances."""
    from gancore.sweep.report import write_sweep_report

    path = write_sweep_report(Path(sweep_dir), Path(out) if out else None)
    click.echo(f"wrote {path}")
