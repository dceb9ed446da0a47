"""fp32 against bf16 against ``auto`` for each variant's default run, side by side in one process (issue 30).

For each variant (its defaults, on its default data): three trainers, ``train.precision`` fp32, bf16 and
auto, driven in blocks of iterations by ``Trainer.advance`` (no samples or checkpoints inside the
timing); after a warm-up the blocks alternate, the order rotating every round. Reports iterations/second
of each, bf16 ÷ fp32, and what auto chose on this machine (with the CPU model and its bf16 flags).

    python benchmarks/speed/precision.py --out benchmarks/results/precision_cpu.json [--variants dcgan wgan]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peer import cpu  # noqa: E402

#: Each variant's default run as the README gives it (the extra settings it names).
RUNS = {
    "dcgan": ("dcgan", {}),
    "cgan": ("cgan", {}),
    "wgan": ("wgan", {}),
    "wgan-gp-grid": ("wgan", {"variant.mode": "gp", "data.name": "gaussian-grid"}),
    "infogan": ("infogan", {}),
    "siamese": ("siamese", {}),
    "siamese-translate": ("siamese", {"variant.mode": "translate"}),
    "cyclegan": ("cyclegan", {}),
    "pix2pix": ("pix2pix", {}),
    "vae": ("vae", {}),
    "vaegan": ("vaegan", {}),
}


def trainer(name: str, precision: str, tmp: Path):
    from gancore.app import load_plugins
    from gancore.kernel import Trainer
    from gancore.testing import make_config, quiet

    variant, extra = RUNS[name]
    host = load_plugins()
    cfg = make_config(host, variant, {**extra, "train.steps": 10**9, "train.precision": precision,
                                      "train.threads": torch.get_num_threads(), "log.sample_every": 0,
                                      "log.checkpoint_every": 0, "log.progress": False})
    return Trainer(host, cfg, tmp / f"{name}-{precision}", echo=quiet)


def measure(name: str, args, tmp: Path) -> dict:
    sides = {prec: trainer(name, prec, tmp) for prec in ("fp32", "bf16", "auto")}
    chosen = sides["auto"].precision.name
    for t in sides.values():
        t.advance(args.warmup)
    seconds = dict.fromkeys(sides, 0.0)
    order = list(sides)
    for i in range(args.rounds):
        for prec in order[i % 3:] + order[:i % 3]:
            start = time.perf_counter()
            sides[prec].advance(args.block)
            seconds[prec] += time.perf_counter() - start
    its = {k: args.block * args.rounds / v for k, v in seconds.items()}
    row = {"run": name, "it_per_s": its, "bf16_over_fp32": its["bf16"] / its["fp32"], "auto_chose": chosen,
           "iterations_each": args.block * args.rounds}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--block", type=int, default=5)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, args, Path(tmp)) for name in args.variants]
    result = {"machine": cpu(), "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
