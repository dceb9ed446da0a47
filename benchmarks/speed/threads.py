"""One thread against all the cores, for each variant's default run and for smaller networks (issue 30).

For each run: two trainers (``train.threads`` 1 and the cores this process may use), driven in blocks of
iterations by ``Trainer.advance``, the blocks alternating after a warm-up (the order rotating every round),
torch's thread count set before each block. Beside each run's iterations/second: the floating-point
operations of one training iteration (forward and backward, both players, counted by
a dispatch mode over torch's flop formulas), to see whether a network's size tells where one thread wins.

    python benchmarks/speed/threads.py --out benchmarks/results/threads_cpu.json [--runs grid-mlp-64 dcgan]
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
from precision import RUNS as DEFAULT_RUNS  # noqa: E402

GRID = {"variant.mode": "gp", "data.name": "gaussian-grid"}
#: Smaller networks than the defaults: where one thread may win.
SMALL = {
    "grid-mlp-16": ("wgan", {**GRID, "variant.mlp_hidden": 16, "variant.mlp_layers": 2}),
    "grid-mlp-32": ("wgan", {**GRID, "variant.mlp_hidden": 32}),
    "grid-mlp-64": ("wgan", {**GRID, "variant.mlp_hidden": 64}),
    "grid-mlp-128": ("wgan", {**GRID, "variant.mlp_hidden": 128}),
    "dcgan-8px-w4": ("dcgan", {"data.image_size": 8, "variant.generator_width": 4, "variant.critic_width": 4}),
    "dcgan-16px-w8": ("dcgan", {"data.image_size": 16, "variant.generator_width": 8, "variant.critic_width": 8}),
    "dcgan-16px-w16": ("dcgan", {"data.image_size": 16, "variant.generator_width": 16,
                                 "variant.critic_width": 16}),
}
RUNS = {**SMALL, **DEFAULT_RUNS}


def trainer(name: str, threads: int, tmp: Path):
    from gancore.app import load_plugins
    from gancore.kernel import Trainer
    from gancore.testing import make_config, quiet

    variant, extra = RUNS[name]
    host = load_plugins()
    cfg = make_config(host, variant, {**extra, "train.steps": 10**9, "train.threads": threads,
                                      "log.sample_every": 0, "log.checkpoint_every": 0, "log.progress": False})
    return Trainer(host, cfg, tmp / f"{name}-{threads}", echo=quiet)


def flops(t) -> int:
    """One iteration's floating-point operations: torch's flop formulas (matmuls, convolutions and their
    gradients) applied in a dispatch mode that runs every op as it is. ``FlopCounterMode`` itself keeps
    module hooks, which a gradient penalty's ``autograd.grad`` refuses."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    total = [0]

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                total[0] += int(formula(*args, **kwargs, out_val=out))
            return out

    with Count():
        t.advance(1)
    return total[0]


def measure(name: str, cores: int, args, tmp: Path) -> dict:
    sides = {n: trainer(name, n, tmp) for n in (1, cores)}
    work = flops(sides[1])
    for n, t in sides.items():
        torch.set_num_threads(n)
        t.advance(args.warmup)
    seconds = dict.fromkeys(sides, 0.0)
    order = list(sides)
    for i in range(args.rounds):
        for n in order[i % 2:] + order[:i % 2]:
            torch.set_num_threads(n)
            start = time.perf_counter()
            sides[n].advance(args.block)
            seconds[n] += time.perf_counter() - start
    its = {str(k): args.block * args.rounds / v for k, v in seconds.items()}
    row = {"run": name, "flops_per_iteration": work, "it_per_s": its,
           "one_over_all": its["1"] / its[str(cores)], "iterations_each": args.block * args.rounds}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    from gancore.kernel.threads import usable_cores

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    cores = usable_cores()
    if cores < 2:
        raise SystemExit("threads.py: this process may use 1 core; there is nothing to compare")
    machine = cpu()  # before the trainers set torch's thread count
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, cores, args, Path(tmp)) for name in args.runs]
    result = {"machine": machine, "cores": cores, "command": " ".join(sys.argv), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
