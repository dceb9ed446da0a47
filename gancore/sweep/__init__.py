"""``gancore sweep``: hyperparameter search and multi-seed studies on Optuna.

The sweep checks everything it can before any training (the base config, every ``--param`` at the ends
of its space, the metric against the variant's task, the storage, the study's identity), writes
``DIR/sweep.json``, retries the trials a dead worker of this machine left running, and starts ``--jobs``
worker processes (:mod:`gancore.sweep.worker`) that share the study through its storage: a sweep started
on several machines with the same ``--storage`` and ``--study`` works on one study.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancore.errors import ConfigError
from gancore.files import write_text_atomic
from gancore.sweep.space import Param, assignment, parse_params
from gancore.sweep.study import counted, default_storage, open_storage, open_study, optuna_module, recover

__all__ = ["SweepSettings", "run_sweep"]


@dataclass
class SweepSettings:
    variant: str
    out: Path
    params: list[str]
    metric: str | None = None
    direction: str | None = None
    seeds: int = 1
    trials: int = 20
    jobs: int = 1
    sampler: str = "tpe"
    pruner: str = "median"
    eval_every: int | None = None
    storage: str | None = None
    study: str = "gancore"
    sampler_seed: int = 0
    config: str | None = None
    sets: list[str] = field(default_factory=list)
    preset: str | None = None


def _metric(host: Any, cfg: Any, name: str | None, direction: str | None) -> tuple[str, str, str]:
    """(metric, value key, direction): ``NAME`` or ``NAME:KEY``; the task's default metric when none."""
    from gancore.evaluation import default_metrics
    from gancore.metrics import task_of

    data = cfg.data_cls(cfg.data).load()
    variant = cfg.variant_cls(cfg.variant, data.spec, cfg.loss_cls(cfg.loss))
    task = task_of(variant)
    if name is None:
        defaults = default_metrics(host, task)
        if not defaults:
            raise ConfigError(f"--metric: no metric is a default for {task} runs; name one (gancore list metrics)")
        name = defaults[0]
    metric, _, key = name.partition(":")
    if metric not in host.metrics:
        raise ConfigError(f"--metric: unknown metric {metric!r} (installed: {', '.join(host.metrics.names())})")
    cls = host.metrics.get(metric)
    if task not in cls.tasks:
        raise ConfigError(f"--metric: {metric} applies to {', '.join(cls.tasks)} runs, not to this {task} run "
                          f"of {cfg.variant_cls.name}")
    if direction is None:
        if cls.higher_is_better is None:
            raise ConfigError(f"--metric: {metric} does not say which way is better; pass --direction")
        direction = "maximize" if cls.higher_is_better else "minimize"
    return metric, key or metric.replace("-", "_"), direction


def _check_params(host: Any, raw: dict[str, Any], sets: list[str], params: list[Param]) -> None:
    """Every key at every end of its space resolves (an unknown key, a value out of its field's range)."""
    from gancore.config import resolve

    for p in params:
        for value in p.corners():
            try:
                resolve(host, raw, [*sets, assignment(p.key, value)])
            except ConfigError as exc:
                raise ConfigError(f"--param {p.key} at {json.dumps(value)}: {exc}") from None


def run_sweep(s: SweepSettings, echo: Any = print) -> int:
    """Run (or continue) the sweep; returns the number of finished trials in the study."""
    from gancore import app
    from gancore.config import build_raw, check_variant_sets, preset_settings, resolve

    optuna = optuna_module()
    params = parse_params(s.params)
    if not params:
        raise ConfigError("--param: give at least one KEY=SPACE to search")
    host = app.host()
    check_variant_sets(s.variant, s.sets)
    fixed = {a.split("=", 1)[0].strip() for a in s.sets}
    for p in params:
        if p.key in fixed:
            raise ConfigError(f"--param {p.key}: also given with --set; search it or fix it, not both")
    chosen = preset_settings(host, s.variant, s.preset)
    raw = build_raw(s.variant, s.config, preset=chosen)
    cfg = resolve(host, raw, s.sets)
    _check_params(host, raw, s.sets, params)
    metric, key, direction = _metric(host, cfg, s.metric, s.direction)
    trials = s.trials
    if s.sampler == "grid":
        size = 1
        for p in params:
            size *= len(p.grid())
        trials = min(trials, size)
    steps = cfg.train.steps
    every = s.eval_every if s.eval_every is not None else (max(steps // 5, 1) if s.pruner == "median" else steps)
    out = s.out
    out.mkdir(parents=True, exist_ok=True)
    storage_url = s.storage or default_storage(out)
    storage = open_storage(storage_url)
    identity = {"variant": s.variant, "metric": f"{metric}:{key}", "direction": direction,
                "space": {p.key: p.spec for p in params}, "seeds": s.seeds}
    study = open_study(storage, s.study, identity, sampler=optuna.samplers.RandomSampler(),
                       pruner=optuna.pruners.NopPruner())
    write_text_atomic(json.dumps({"storage": storage_url, "study": s.study, **identity, "config": s.config,
                                  "preset": s.preset, "sets": list(s.sets), "first_seed": cfg.train.seed},
                                 indent=1) + "\n", out / "sweep.json")
    recover(study, echo)
    done = counted(study)
    echo(f"sweep {s.study}: {s.variant}, {direction} {metric}:{key} over {', '.join(p.key for p in params)}; "
         f"{done} of {trials} trials in {storage_url}")
    if done >= trials:
        return done
    spec = {
        "variant": s.variant, "out": str(out.resolve()), "config": s.config, "preset_settings": chosen,
        "sets": list(s.sets), "params": [{"key": p.key, "kind": p.kind, "values": list(p.values)} for p in params],
        "seeds": list(range(cfg.train.seed, cfg.train.seed + s.seeds)), "metric": metric, "key": key,
        "trials": trials, "sampler": s.sampler, "pruner": s.pruner, "sampler_seed": s.sampler_seed,
        "startup_trials": max(2, min(5, trials // 4)), "storage": storage_url, "study": s.study, "steps": steps,
        "trial_sets": ["log.progress=false", f"eval.every={every}",
                       f"eval.metrics={json.dumps([{'name': metric}])}"],
    }
    jobs = max(1, min(s.jobs, trials - done))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    workers = []
    for i in range(jobs):
        path = out / f".worker{i}.json"
        write_text_atomic(json.dumps({**spec, "worker": i, "threads": threads}), path)
        workers.append(subprocess.Popen([sys.executable, "-m", "gancore.sweep.worker", str(path)],
                                        env={**os.environ, "OMP_NUM_THREADS": str(threads)}))
    codes = []
    try:
        codes = [w.wait() for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for i in range(jobs):
            (out / f".worker{i}.json").unlink(missing_ok=True)
    if any(c == 2 for c in codes):
        raise ConfigError("the sweep stopped: a trial's config was refused (the line above)")
    failed = [c for c in codes if c not in (0, 2)]
    if failed:
        echo(f"warning: {len(failed)} of {jobs} workers ended with an error (exit {failed[0]})")
    study = optuna.load_study(study_name=s.study, storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if finished:
        best = study.best_trial
        echo(f"best: trial {best.number}, {metric}:{key} {best.value:.4g}: "
             + " ".join(assignment(k, v) for k, v in best.params.items()))
    return len(finished)
