"""A sweep's worker process: asks the study for a trial, trains it (one ordinary run per seed under
``DIR/trials/NNNN/seed_S``), reports its periodic evaluations to the pruner, tells the result; again,
until the study has ``--trials`` trials.

    python -m gancore.sweep.worker SPEC.json    (started by ``gancore sweep``)
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from gancore import hookimpl
from gancore.errors import ConfigError, GancoreError
from gancore.sweep.space import Param, assignment
from gancore.sweep.study import counted, open_storage, optuna_module, surplus, this_host

PRUNED_MESSAGE = "pruned: its evaluation at step {step} ({value:.4g}) is worse than the median of earlier trials"


def objective_value(results: list[dict[str, Any]], metric: str, key: str) -> float | None:
    for r in results:
        if r["metric"] == metric:
            value = r["values"].get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            numeric = sorted(k for k, v in r["values"].items() if isinstance(v, int | float))
            raise ConfigError(f"--metric {metric}:{key}: the metric gives no value {key!r} "
                              f"(it gives {', '.join(numeric)})")
    return None


class TrialReporter:
    """A lifecycle plugin of the worker's runs: each evaluation goes to the trial (the step of seed k counts
    from k * train.steps, so every trial's seeds line up for the pruner) and a trial the pruner drops
    stops its run (``run.stop``). It also ends the worker if the sweep that started it is gone."""

    def __init__(self, metric: str, key: str, parent: int) -> None:
        self.metric, self.key, self.parent = metric, key, parent
        self.trial: Any = None
        self.offset = 0
        self.prune = False
        self.last: float | None = None

    @hookimpl
    def gancore_step_end(self, run: Any) -> None:
        if os.getppid() != self.parent:  # the sweep was killed: its workers go with it
            os._exit(3)

    @hookimpl
    def gancore_evaluated(self, step: int, results: list[dict[str, Any]], run: Any) -> None:
        if self.trial is None:
            return
        value = objective_value(results, self.metric, self.key)
        if value is None:
            return
        self.last = value
        if run.is_last or not math.isfinite(value):
            return
        self.trial.report(value, self.offset + step)
        if self.prune and self.trial.should_prune():
            run.stop(PRUNED_MESSAGE.format(step=step, value=value))


def _load(spec: dict[str, Any]) -> tuple[Any, Any]:
    optuna = optuna_module()
    seed = spec["sampler_seed"] + 7919 * spec["worker"]  # each worker its own draws
    params = [Param(p["key"], p["kind"], tuple(p["values"])) for p in spec["params"]]
    if spec["sampler"] == "grid":
        sampler = optuna.samplers.GridSampler({p.key: p.grid() for p in params}, seed=seed)
    elif spec["sampler"] == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=spec["startup_trials"], n_warmup_steps=spec["steps"] // 2)
              if spec["pruner"] == "median" else optuna.pruners.NopPruner())
    study = optuna.load_study(study_name=spec["study"], storage=open_storage(spec["storage"]), sampler=sampler,
                              pruner=pruner)
    return study, {p.key: p.distribution() for p in params}


def _finished_value(run_dir: Path, steps: int, metric: str, key: str) -> float | None:
    """The objective of a seed's run that already finished (a retried trial does not train it again)."""
    found = run_dir / "eval" / f"{metric}_step_{steps:07d}.json"
    if not found.is_file():
        return None
    try:
        return objective_value([json.loads(found.read_text())], metric, key)
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def run_trial(spec: dict[str, Any], study: Any, trial: Any, reporter: TrialReporter, host: Any) -> None:
    from gancore.config import build_raw, resolve
    from gancore.kernel import Trainer

    optuna = optuna_module()
    out = Path(spec["out"])
    retry_of = trial.user_attrs.get("retry_of")
    folder = Path(trial.user_attrs.get("dir") or out / "trials" / f"{trial.number:04d}")
    trial.set_user_attr("host", this_host())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("dir", str(folder))
    started = time.perf_counter()
    sets = [*spec["sets"], *(assignment(k, v) for k, v in trial.params.items())]
    label = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    print(f"trial {trial.number}: {label}" + (f" (retry of trial {retry_of})" if retry_of is not None else ""),
          flush=True)
    values: list[float] = []
    run_seconds = 0.0  # building and training the runs: what `gancore run` of each seed does
    steps = spec["steps"]
    for index, seed in enumerate(spec["seeds"]):
        run_dir = folder / f"seed_{seed}"
        done = _finished_value(run_dir, steps, spec["metric"], spec["key"])
        if done is not None:
            values.append(done)
            continue
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("step_*.safetensors"))
        raw = build_raw(spec["variant"], spec["config"], base=json.loads((run_dir / "config.json").read_text())
                        if resume else None, preset=spec["preset_settings"])
        cfg = resolve(host, raw, [*sets, f"train.seed={seed}", *spec["trial_sets"]])
        reporter.trial, reporter.offset, reporter.last = trial, index * steps, None
        began = time.perf_counter()
        trainer = Trainer(host, cfg, run_dir, resume=resume, echo=lambda m: None)
        result = trainer.train()
        run_seconds += time.perf_counter() - began
        trial.set_user_attr("run_seconds", round(run_seconds, 2))
        reporter.trial = None
        if result.stopped:
            trial.set_user_attr("pruned", result.stopped)
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
            trial.set_user_attr("values", values)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            print(f"trial {trial.number}: {result.stopped}", flush=True)
            return
        if reporter.last is None:
            raise ConfigError(f"--metric {spec['metric']}: the run in {run_dir} was not evaluated by it")
        values.append(reporter.last)
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    trial.set_user_attr("values", values)
    trial.set_user_attr("std", spread)
    trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
    if not math.isfinite(mean):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(f"trial {trial.number}: failed (the objective is {mean})", flush=True)
        return
    study.tell(trial, mean)
    spread_text = f" ± {spread:.2g} over {len(values)} seeds" if len(values) > 1 else ""
    print(f"trial {trial.number}: {spec['metric']}:{spec['key']} {mean:.4g}{spread_text}", flush=True)


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    from gancore.app import load_plugins

    optuna = optuna_module()
    reporter = TrialReporter(spec["metric"], spec["key"], os.getppid())
    reporter.prune = spec["pruner"] == "median"
    host = load_plugins(extra=[("gancore-sweep-trial", reporter)])
    study, distributions = _load(spec)
    while counted(study) < spec["trials"]:
        trial = study.ask(distributions)
        if surplus(study, trial.number, spec["trials"]):
            trial.set_user_attr("surplus", True)
            trial.set_user_attr("error", f"not trained: the study already had its {spec['trials']} trials")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        try:
            run_trial(spec, study, trial, reporter, host)
        except GancoreError as exc:
            reporter.trial = None
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            print(f"trial {trial.number}: failed: {exc}", flush=True)
            if isinstance(exc, ConfigError):  # every trial would fail the same way
                print(f"gancore: error: {exc}", file=sys.stderr, flush=True)
                return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
