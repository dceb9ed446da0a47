"""How much arithmetic each side of the peer benchmark does, and how fast it runs it (issue 30).

The peer benchmark (``peer.py``) compares gancore's DCGAN iteration at 64x64 with pytorch/examples'.
This counts each iteration's floating-point operations (``torch.utils.flop_counter.FlopCounterMode``:
convolutions and matrix products, forward and backward), times each side in alternating blocks, and
times a plain square fp32 GEMM in the same process, so the three rates (GFLOP/s) come from one run:

- the ratio of the examples' arithmetic to gancore's is what gancore gains by doing less work
  (the critic's weight gradients it skips in the generator's update);
- each side's achieved rate against the GEMM's says how much is left in running that work faster.

    python benchmarks/speed/work.py --out benchmarks/results/work_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from examples_dcgan import ExamplesDCGAN  # noqa: E402
from peer import cpu, gancore_trainer  # noqa: E402


def gemm_rate(n: int, repeats: int) -> float:
    """GFLOP/s of an n x n fp32 matrix product, the best of ``repeats`` timings of 5 products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * n ** 3 / best / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"gancore-fp32": gancore_trainer("fp32", False, Path(tmp), args),
                 "gancore-fp32-reuse_fake": gancore_trainer("fp32", True, Path(tmp), args)}
        peer = ExamplesDCGAN(next(iter(sides.values())).sampler.x.clone(), batch_size=args.batch)
        step = {name: (lambda n, t=t: t.advance(n)) for name, t in sides.items()}
        step["examples"] = lambda n: [peer.step() for _ in range(n)]
        flops = {}
        for name, fn in step.items():
            fn(2)  # warm-up
            with FlopCounterMode(display=False) as counter:
                fn(1)
            flops[name] = counter.get_total_flops()
        seconds = dict.fromkeys(step, 0.0)
        names = list(step)
        gemm = []
        for i in range(args.rounds):
            gemm.append(gemm_rate(2048, 3))
            for name in names[i % len(names):] + names[:i % len(names)]:
                start = time.perf_counter()
                step[name](args.block)
                seconds[name] += time.perf_counter() - start
    iterations = args.block * args.rounds
    per_it = {k: v / iterations for k, v in seconds.items()}
    row = {"machine": cpu(), "image_size": 64, "batch": args.batch, "iterations_each": iterations,
           "gflop_per_iteration": {k: v / 1e9 for k, v in flops.items()},
           "seconds_per_iteration": per_it,
           "gflop_per_s": {k: flops[k] / 1e9 / per_it[k] for k in step},
           "gemm_2048_gflop_per_s": {"per_round": gemm, "best": max(gemm)},
           "examples_work_over_gancore": {k: flops["examples"] / flops[k] for k in sides},
           "speed_ratio": {k: per_it["examples"] / per_it[k] for k in sides},
           "command": " ".join(sys.argv)}
    print(json.dumps(row, indent=1))
    if args.out:
        args.out.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
