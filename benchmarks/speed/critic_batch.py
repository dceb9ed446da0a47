"""One critic pass over real and generated together, or two passes: is a batch of 2N faster than two of N?

A lever for the fp32 peer ratio (issue 30): the critic's update scores a real batch and a generated
batch in two calls, as pytorch/examples does. Scoring both in one call of twice the batch would
do the same arithmetic in fewer, larger convolutions; with BatchNorm it would also need statistics
per half to stay the same update. This measures whether the larger calls pay before anything is
built: pytorch/examples' critic at 64x64 (ndf 64, channels_last, fp32), forward and backward, over
two batches of ``--batch`` against one batch of twice that, alternating in blocks of 5 over
``--rounds`` rounds after a warm-up.

    python benchmarks/speed/critic_batch.py --out benchmarks/results/critic_batch_cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from examples_dcgan import critic  # noqa: E402
from peer import cpu  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    cl = torch.channels_last
    d = critic(1, 64).to(memory_format=cl)  # the example's own critic
    a, b = (torch.randn(args.batch, 1, 64, 64).to(memory_format=cl) for _ in range(2))
    both = torch.cat([a, b]).contiguous(memory_format=cl)

    def two() -> None:
        d.zero_grad()
        (d(a).sum() + d(b).sum()).backward()

    def one() -> None:
        d.zero_grad()
        d(both).sum().backward()

    sides = {"two_calls": two, "one_call": one}
    for f in (two, one, two, one):
        f()
    seconds: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, f in sides.items():
            t = time.perf_counter()
            for _ in range(5):
                f()
            seconds[name].append((time.perf_counter() - t) / 5)
    best = {k: min(v) for k, v in seconds.items()}
    result = {**cpu(), "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch,
              "seconds_per_pass": seconds, "best": best, "one_call_over_two": best["one_call"] / best["two_calls"]}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
