"""Does a refactor of the kernel change what training computes? Old code against new, bitwise.

Checks out ``--before`` (a git revision) into a temporary worktree, trains each configuration
below for 4 steps with that code and with this checkout's (same command, same seed, CPU), and
compares the final checkpoints tensor by tensor (weights, EMA, optimizer moments, RNG and sampler
state) and the logged losses. On the CPU training is deterministic, so "0 differ" means the
refactor left every number alone, and the quality benchmarks cannot have moved.

    python benchmarks/equivalence.py --before 4592ac3
    python benchmarks/equivalence.py --before 30719cb --rename critic.pool_a=state_pool_a \
        --rename critic.pool_b=state_pool_b     # tensors the refactor moved to another prefix
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["--set", "train.steps=4", "--set", "train.batch_size=8", "--set", "log.progress=false",
          "--set", "log.sample_every=2", "--set", "log.checkpoint_every=4", "--set", "log.every=1",
          "--set", "train.device=cpu"]
TOY = ["regularizers.0.weight=1", "train.batch_size=256", "optim.generator.lr=2e-3", "optim.critic.lr=2e-3",
       "optim.generator.schedule=linear", "optim.critic.schedule=linear", "optim.generator.decay_start=0",
       "optim.critic.decay_start=0"]
RUNS: dict[str, list[str]] = {
    "dcgan-ema": ["dcgan", "--set", "train.ema=0.9"],
    "wgan-gp": ["wgan", "--set", "variant.mode=gp"],
    "wgan-clip": ["wgan", "--set", "variant.mode=clip"],
    # every setting the data-aware defaults choose is given, so both sides train the same thing
    "wgan-gp-grid": ["wgan", "--set", "variant.mode=gp", "--set", "data.name=gaussian-grid",
                     *[a for s in TOY for a in ("--set", s)]],
    "cgan": ["cgan"],
    "cgan-acgan-concat": ["cgan", "--set", "variant.auxiliary=true", "--set", "variant.conditioning=concat"],
    "cyclegan": ["cyclegan", "--set", "data.image_size=16"],
    "siamese": ["siamese"],
    "siamese-translate": ["siamese", "--set", "variant.mode=translate", "--set", "data.image_size=16"],
}


def train(code: Path, name: str, out: Path) -> None:
    """``gancore run`` with the code under ``code`` (its core and plugins first on the path)."""
    paths = [str(code), *(str(p) for p in sorted((code / "plugins").iterdir()) if p.is_dir())]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "gancore", "run", *RUNS[name], "--out", str(out), *COMMON],
                          cwd=code, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} with {code} failed:\n{done.stderr[-2000:]}")


def checkpoint(run: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(run / "checkpoints" / "step_0000004.safetensors"), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118


def losses(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "it_per_s"} for r in records]


def renamed(key: str, renames: dict[str, str]) -> str:
    for old, new in renames.items():
        if key.startswith(f"{old}."):
            return f"{new}.{key[len(old) + 1:]}"
    return key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="The git revision to compare with (the commit before a refactor).")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "equivalence.json")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="A checkpoint prefix the refactor moved: the before side's OLD.* is compared as NEW.*.")
    args = p.parse_args()
    renames = dict(item.split("=", 1) for item in args.rename)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.before],
                       check=True, capture_output=True)
        try:
            for name in RUNS:
                train(old, name, Path(tmp) / "old" / name)
                train(ROOT, name, Path(tmp) / "new" / name)
                a, b = checkpoint(Path(tmp) / "old" / name), checkpoint(Path(tmp) / "new" / name)
                a = {renamed(k, renames): v for k, v in a.items()}
                common = sorted(set(a) & set(b))
                rows.append({"run": name, "tensors": len(common), "only_before": sorted(set(a) - set(b)),
                             "only_after": sorted(set(b) - set(a)),
                             "differ": [k for k in common if not torch.equal(a[k], b[k])],
                             "losses_equal": losses(Path(tmp) / "old" / name) == losses(Path(tmp) / "new" / name)})
                r = rows[-1]
                print(f"{name:<18} {r['tensors']:>4} tensors, {len(r['differ'])} differ, "
                      f"{len(r['only_before'])} only before, {len(r['only_after'])} only after, "
                      f"losses equal: {r['losses_equal']}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"before": args.before, "renames": renames, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
