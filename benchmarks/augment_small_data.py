"""DCGAN on little data, without and with the critic-side augmentations (``augment.name``).

Trains DCGAN on 180 digits (10% of the 1,797; taken from the training split) and on the whole training split
(1,437), each with no augmentation, with ``diffaugment`` and with ``ada``, for each seed, through the Python
API (``gancore.train(data=...)``); scores 1,000 samples of each run's EMA generator by FID on the digits CNN
(gancore's ``digits`` extractor) against the full test split (360 images, never trained on).

    python benchmarks/augment_small_data.py OUT.json [--steps 2000] [--seeds 0 1 2] [--only 10%] [--every 1000]

Runs ``--jobs`` trainings at once, one thread each. With ``--every`` the checkpoints along the way are
scored too (``fid_at``). Prints one JSON line per run and writes them all, with the machine, to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

import gancore
from gancore.data.digits import Digits
from gancore.metrics import extractors, stats

AUGMENTS = {
    "none": {},
    "diffaugment": {"augment.name": "diffaugment"},
    "ada": {"augment.name": "ada"},
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def subsets() -> dict[str, torch.Tensor]:
    """10%: 180 digits of the training split (a fixed draw); 100%: all 1,437 of it."""
    train = Digits(Digits.Config(split="train")).load().x
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(2026))
    return {"10%": train[order[:180]].contiguous(), "100%": train}


def fid(ex, fake: torch.Tensor, real_moments) -> float:
    f, _ = ex.run(fake)
    mu, sigma = f.mean(0).numpy(), torch.cov(f.T).numpy()
    return float(stats.frechet_distance(mu, sigma, *real_moments))


def one_run(job: tuple) -> dict:
    """Train one configuration and score its checkpoints (a worker process with one thread)."""
    fraction, seed, aug, steps, every, n, tmp = job
    torch.set_num_threads(1)
    ex = extractors.get_extractor("digits")
    f, _ = ex.run(Digits(Digits.Config(split="test")).load().x)
    real = (f.mean(0).numpy(), torch.cov(f.T).numpy())
    x = subsets()[fraction]
    sets = {"train.steps": steps, "train.seed": seed, "train.threads": 1, "log.sample_every": 0,
            "log.checkpoint_every": every, "log.keep_checkpoints": 100, **AUGMENTS[aug]}
    out = Path(tmp) / f"{fraction[:-1]}-{seed}-{aug}"
    t = time.perf_counter()
    model = gancore.train("dcgan", out=out, data=x, set=sets, progress=False)
    seconds = time.perf_counter() - t
    curve = {}
    for ckpt in sorted((out / "checkpoints").glob("step_*.safetensors")):
        step = int(ckpt.stem.split("_")[1])
        curve[step] = round(fid(ex, gancore.load(ckpt).sample(n, seed=1), real), 3)
    row = {"data": fraction, "images": len(x), "seed": seed, "augment": aug, "steps": steps,
           "fid": round(fid(ex, model.sample(n, seed=1), real), 3), "fid_at": curve, "seconds": round(seconds, 1)}
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in last if "augment/p" in r]
    if last:
        row["final_p"] = round(last[-1]["augment/p"], 3)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", choices=["10%", "100%"], default=None)
    ap.add_argument("--augments", nargs="+", default=list(AUGMENTS))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--every", type=int, default=0, help="also score the checkpoints every this many steps")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    args = ap.parse_args()
    extractors.get_extractor("digits")  # trains and caches the CNN once, before the workers start
    fractions = [args.only] if args.only else ["10%", "100%"]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(fr, seed, aug, args.steps, args.every, args.n, tmp)
                for fr in fractions for seed in args.seeds for aug in args.augments]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            rows = pool.map(one_run, jobs, chunksize=1)
    flags = ""
    try:
        flags = " ".join(sorted({f for f in Path("/proc/cpuinfo").read_text().split()
                                 if f.startswith(("avx512_bf16", "amx"))}))
    except OSError:
        pass
    Path(args.out).write_text(json.dumps({"machine": {"cpu": cpu_model(), "bf16_flags": flags or "none",
                                                      "threads_per_run": 1, "jobs": args.jobs,
                                                      "torch": torch.__version__,
                                                      "python": sys.version.split()[0]},
                                          "command": " ".join(sys.argv), "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
