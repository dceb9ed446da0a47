"""Runs that share a machine (issue 30): k concurrent copies of a README command against k times one alone.

For each command (the README's DCGAN and WGAN-GP grid commands, with fewer steps) and each thread
policy (``auto``, the default; and a fixed count of all cores per run, what torch did by itself before
``train.threads``), start k copies at once in fresh processes (each its own --out; W&B off) for
k = 1, 2, 4, and time the wall clock until the last ends. Target: wall(k) <= 1.1 x k x wall(1).

    python benchmarks/speed/sharing.py --out benchmarks/results/sharing_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

COMMANDS = {
    "dcgan": ["run", "dcgan", "--set", "train.steps=100"],
    "wgan-gp-grid": ["run", "wgan", "--set", "variant.mode=gp", "--set", "data.name=gaussian-grid",
                     "--set", "train.steps=300"],
}


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def concurrent(command: list[str], k: int, policy: str, tmp: Path, timeout: float) -> float | None:
    env = {**os.environ, "GANCORE_DISABLE_PLUGINS": "wandb", "GANCORE_SHARE_DIR": str(tmp / "share")}
    env.pop("OMP_NUM_THREADS", None)
    paths = [str(ROOT)] + [str(p) for p in sorted((ROOT / "plugins").iterdir()) if p.is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    extra = [] if policy == "auto" else ["--set", f"train.threads={policy}"]
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "gancore", *command,
                               "--out", str(tmp / f"{command[1]}-{policy}-{k}-{i}"),
                               "--set", "log.progress=false", "--set", "log.sample_every=0", *extra],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(k)]
    deadline = start + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(deadline - time.perf_counter(), 0.1))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            return None
        if proc.returncode:
            raise SystemExit(f"{' '.join(command)} failed (exit {proc.returncode})")
    return time.perf_counter() - start


def main() -> None:
    from peer import cpu

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    p.add_argument("--ks", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--policies", nargs="+", default=["auto", str(cores())])
    p.add_argument("--timeout", type=float, default=600.0, help="per group of concurrent runs")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.commands:
            for policy in args.policies:
                alone = None
                for k in args.ks:
                    wall = concurrent(COMMANDS[name], k, policy, Path(tmp), args.timeout)
                    if k == 1:
                        alone = wall
                    row = {"command": name, "threads": policy, "k": k, "wall_s": wall,
                           "over_k_alone": None if wall is None or not alone else wall / (k * alone)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    result = {"machine": {**cpu(), "cores": cores()}, "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
