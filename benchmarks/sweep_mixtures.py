"""``gancore sweep`` on the 25-Gaussian grid: WGAN-GP's learning rates and n_critic, and what the sweep
machinery costs per trial.

1. **search**: ``gancore sweep wgan`` on ``gaussian-grid`` over ``optim.generator.lr``, ``optim.critic.lr``
   (loguniform) and ``train.n_critic`` (int), ``--trials`` trials x ``--seeds`` seeds, scored by
   ``modes:high_quality`` (the VEEGAN/PacGAN protocol of ``benchmarks/mixtures.py``: 2,500 samples; a
   sample is high quality within 3 std of a mode), TPE and the median pruner;
2. **best vs defaults**: the best configuration and the plugin's defaults (``wgan``'s data-aware defaults on
   vector data) trained with ``gancore run`` on fresh seeds, scored the same way;
3. **overhead**: a one-trial, one-seed sweep against ``gancore run`` of the same settings, alternated
   ``--repeats`` times (wall seconds of each command); and, inside the search, each trial's wall time in the
   storage minus the seconds its runs took (``run_seconds``: building and training them).

    python benchmarks/sweep_mixtures.py --out benchmarks/results/sweep_mixtures.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--set", "data.name=gaussian-grid", "--set", "train.precision=fp32", "--set", "log.every=500",
          "--set", "log.sample_every=0", "--set", "log.progress=false"]
SPACE = ["--param", "optim.generator.lr=loguniform(1e-4,1e-2)", "--param", "optim.critic.lr=loguniform(1e-4,1e-2)",
         "--param", "train.n_critic=int(1,8)"]


def _env(threads: int) -> dict[str, str]:
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "plugins").iterdir()) if p.is_dir())]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": str(threads)}


def _gancore(args: list[str], threads: int) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gancore", *args], capture_output=True, text=True,
                          env=_env(threads))
    if done.returncode != 0:
        raise RuntimeError(f"gancore {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def cpu() -> dict[str, str]:
    info = {"machine": platform.machine(), "cores": str(os.cpu_count())}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["model"] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line)
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
        info["flags"] = " ".join(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx2", "avx512f")))
    except (OSError, StopIteration):
        pass
    return info


def search(out: Path, steps: int, trials: int, seeds: int, jobs: int) -> dict:
    import optuna

    started = time.perf_counter()
    _gancore(["sweep", "wgan", "--out", str(out), *COMMON, "--set", f"train.steps={steps}", *SPACE,
              "--metric", "modes:high_quality", "--trials", str(trials), "--seeds", str(seeds), "--jobs", str(jobs),
              "--eval-every", str(max(steps // 5, 1))], threads=1)
    wall = time.perf_counter() - started
    _gancore(["sweep", "report", str(out)], threads=1)
    study = optuna.load_study(study_name="gancore", storage=f"sqlite:///{out / 'study.db'}")
    rows = []
    for t in study.trials:
        took = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append({"number": t.number, "state": t.state.name.lower(), "params": t.params, "value": t.value,
                     "values": t.user_attrs.get("values"), "std": t.user_attrs.get("std"),
                     "trial_seconds": took, "run_seconds": t.user_attrs.get("run_seconds"),
                     "pruned": t.user_attrs.get("pruned")})
    best = study.best_trial
    bookkeeping = [r["trial_seconds"] - r["run_seconds"] for r in rows
                   if r["trial_seconds"] is not None and r["run_seconds"] is not None]
    return {"wall_seconds": round(wall, 1), "trials": rows, "best": {"number": best.number, "params": best.params,
                                                                       "value": best.value},
            "in_trial_overhead_seconds": {"mean": sum(bookkeeping) / len(bookkeeping), "max": max(bookkeeping)}}


def _score(run: Path, steps: int) -> dict:
    found = json.loads((run / "eval" / f"modes_step_{steps:07d}.json").read_text())["values"]
    return {"modes": found["modes"], "high_quality": found["high_quality"]}


def compare(root: Path, best: dict, steps: int, seeds: list[int], jobs: int) -> dict:
    configs = {"defaults": [], "best": [a for k, v in best.items() for a in ("--set", f"{k}={json.dumps(v)}")]}

    def one(name: str, seed: int) -> dict:
        run = root / f"{name}-{seed}"
        seconds = _gancore(["run", "wgan", "--out", str(run), *COMMON, "--set", f"train.steps={steps}",
                            "--set", f"train.seed={seed}", "--set", f"eval.every={steps}",
                            "--set", 'eval.metrics=[{"name": "modes"}]', *configs[name]], threads=1)
        return {"config": name, "seed": seed, **_score(run, steps), "seconds": round(seconds, 1)}

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda a: one(*a), [(n, s) for n in configs for s in seeds]))


def overhead(root: Path, repeats: int, steps: int) -> dict:
    fixed = [*COMMON, "--set", f"train.steps={steps}", "--set", "optim.generator.lr=0.002"]
    sweep_s, run_s = [], []
    for i in range(repeats):
        run_s.append(_gancore(["run", "wgan", "--out", str(root / f"plain-{i}"), *fixed,
                               "--set", "optim.critic.lr=0.002", "--set", f"eval.every={steps}",
                               "--set", 'eval.metrics=[{"name": "modes"}]'], threads=2))
        sweep_s.append(_gancore(["sweep", "wgan", "--out", str(root / f"sweep-{i}"), *fixed,
                                 "--param", "optim.critic.lr=choice(0.002)", "--metric", "modes:high_quality",
                                 "--trials", "1", "--pruner", "none"], threads=2))
    mean = sum(sweep_s) / repeats - sum(run_s) / repeats
    return {"steps": steps, "run_seconds": [round(s, 2) for s in run_s],
            "sweep_seconds": [round(s, 2) for s in sweep_s], "overhead_seconds": round(mean, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/sweep_mixtures.json")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--compare-seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overhead-steps", type=int, default=200)
    parser.add_argument("--work", default=None, help="Keep the sweep and runs here [default: a temporary folder].")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gancore-sweep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {"cpu": cpu(), "date": time.strftime("%Y-%m-%d"), "steps": args.steps, "trials": args.trials,
              "seeds": args.seeds, "jobs": args.jobs}
    result["overhead"] = overhead(work / "overhead", args.repeats, args.overhead_steps)
    print(json.dumps(result["overhead"]), flush=True)
    result["search"] = search(work / "sweep", args.steps, args.trials, args.seeds, args.jobs)
    print(json.dumps(result["search"]["best"]), flush=True)
    result["compare"] = compare(work / "compare", result["search"]["best"]["params"], args.steps,
                                args.compare_seeds, args.jobs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for row in result["compare"]:
        print(row, flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
