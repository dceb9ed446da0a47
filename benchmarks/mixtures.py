"""Mode collapse on the 2-D Gaussian grid (the VEEGAN / PacGAN protocol).

For each variant and seed: train on ``gaussian-grid`` (25 modes at {-4,-2,0,2,4}^2, std 0.05),
draw 2,500 samples, count the modes captured (a mode is captured when it is the nearest mode
of at least one sample within 3 std) and the share of high-quality samples (within 3 std of
their nearest mode). Runs go in parallel processes (``--jobs``); prints a table and writes
``benchmarks/results/mixtures.json``.

    python benchmarks/mixtures.py --steps 5000 --jobs 3
    python benchmarks/mixtures.py --variants wgan-gp-toy --steps 6000 --jobs 3   # WGAN-GP, toy settings
    python benchmarks/mixtures.py --variants readme --jobs 3   # the README's command, the plugin's defaults

``readme`` runs the README's ``gancore run wgan --set variant.mode=gp --set data.name=gaussian-grid``
as a user would: only the seed and the logging are set, so the steps, batch, learning rates and
penalty are the plugin's (data-aware) defaults, and ``--steps`` does not apply.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The WGAN-GP paper's lambda = 10 was chosen for images; its authors' own 2-D toy runs use a
# much smaller one (0.1). "wgan-gp-toy" is WGAN-GP (same loss, penalty, n_critic 5, Adam betas
# (0, 0.9)) with toy settings found by a sweep on this grid (benchmarks/README.md): lambda = 1,
# Adam 2e-3 decayed linearly to 0 over the run.
TOY = ["regularizers.0.weight=1", "optim.generator.lr=2e-3", "optim.critic.lr=2e-3",
       "optim.generator.schedule=linear", "optim.critic.schedule=linear",
       "optim.generator.decay_start=0", "optim.critic.decay_start=0"]
VARIANTS: dict[str, list[str]] = {
    "dcgan": ["dcgan"],
    "wgan-clip": ["wgan", "--set", "variant.mode=clip"],
    "wgan-gp": ["wgan", "--set", "variant.mode=gp"],
    "wgan-gp-toy": ["wgan", "--set", "variant.mode=gp", *[a for s in TOY for a in ("--set", s)]],
    "readme": ["wgan", "--set", "variant.mode=gp", "--set", "data.name=gaussian-grid"],
}
#: Variants run with the plugin's defaults: no batch, steps or precision set by the benchmark.
AS_DEFAULTS = {"readme"}
LOGGING = ["--set", "log.progress=false", "--set", "log.every=500", "--set", "log.sample_every=0"]
COMMON = ["--set", "data.name=gaussian-grid", "--set", "train.batch_size=256",
          "--set", "log.progress=false", "--set", "log.every=500", "--set", "log.sample_every=0",
          "--set", "train.precision=fp32"]


def one_run(name: str, seed: int, steps: int, extra: list[str], root: Path, device: str) -> dict:
    out = root / f"{name}-{seed}"
    settings = LOGGING if name in AS_DEFAULTS else [*COMMON, "--set", f"train.steps={steps}"]
    cmd = [sys.executable, "-m", "gancore", "run", *VARIANTS[name], "--out", str(out), *settings,
           "--set", f"train.seed={seed}", "--set", f"train.device={device}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{name} seed {seed} failed:\n{done.stderr[-2000:]}")
    code = (
        "import json,sys,torch\n"
        "from gancore.app import load_plugins\nfrom gancore.inference import generate\n"
        "from gancore.data.mixtures import GaussianGrid\nfrom gancore.metrics.modes import mode_stats\n"
        f"x,_=generate(load_plugins(), {str(out)!r}, n=2500, seed=12345)\n"
        "g=GaussianGrid()\nprint(json.dumps(mode_stats(x, g.centres(), g.std)))\n"
    )
    stats = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout)
    resolved = json.loads((out / "config.json").read_text())
    return {"variant": name, "seed": seed, "steps": resolved["train"]["steps"],
            "batch": resolved["train"]["batch_size"], "seconds": round(seconds, 1), **stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=["dcgan", "wgan-clip", "wgan-gp"], choices=list(VARIANTS))
    p.add_argument("--jobs", type=int, default=1, help="Runs in parallel (one process each).")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", dest="sets", action="append", default=[], help="Extra --set for every run.")
    p.add_argument("--out", type=Path, default=HERE / "results" / "mixtures.json")
    args = p.parse_args()
    extra = [a for s in args.sets for a in ("--set", s)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, v, s, args.steps, extra, Path(tmp), args.device)
                   for v in args.variants for s in args.seeds]
        rows = [f.result() for f in futures]
    import torch

    machine = (torch.cuda.get_device_name() if args.device != "cpu" and torch.cuda.is_available()
               else f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} threads")
    print(f"gaussian-grid, 2,500 samples per run, on {machine}")
    print(f"{'variant':<11} {'seed':>4} {'steps':>6} {'batch':>5} {'modes':>6} {'high-quality':>13} {'seconds':>8}")
    for r in rows:
        print(f"{r['variant']:<11} {r['seed']:>4} {r['steps']:>6} {r['batch']:>5} "
              f"{r['modes']:>3}/{r['total_modes']:<2} {100 * r['high_quality']:>12.1f}% {r['seconds']:>8.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "steps": args.steps, "extra": args.sets,
                                    "commands": {v: VARIANTS[v] + (LOGGING if v in AS_DEFAULTS else COMMON)
                                                 for v in args.variants},
                                    "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
