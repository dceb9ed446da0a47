"""gancore ÷ pytorch/examples' DCGAN at 64x64, side by side in one process (issue 30's peer benchmark).

gancore: ``gancore run dcgan --set data.image_size=64 --set variant.generator_width=64 --set
variant.critic_width=64`` as a user runs it (its defaults: EMA generator, logging every log.every steps,
the fast path's auto levers), built once per precision and driven in blocks of iterations by
``Trainer.advance`` (no sample grids or checkpoints inside the timing: both are off), each precision
with and without ``variant.reuse_fake`` (one generator forward per iteration, as the example does). The peer:
``examples_dcgan.py`` (the example's loop, fp32) on the same 64x64 digits in memory, batch 64. After a
warm-up, blocks alternate (the order rotates every round); images/second is batch x iterations / seconds.

    python benchmarks/speed/peer.py --out benchmarks/results/peer_cpu.json [--precisions fp32 auto] [--reuse both]
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

from examples_dcgan import ExamplesDCGAN  # noqa: E402


def cpu() -> dict[str, str]:
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "bf16_flags": " ".join(sorted(f for f in flags if "bf16" in f or f.startswith("amx")))
            or "none", "threads": str(torch.get_num_threads()), "torch": torch.__version__}


def gancore_trainer(precision: str, reuse: bool, tmp: Path, args):
    from gancore.app import load_plugins
    from gancore.kernel import Trainer
    from gancore.testing import make_config, quiet

    host = load_plugins()
    cfg = make_config(host, "dcgan", {"data.image_size": 64, "variant.generator_width": 64,
                                      "variant.critic_width": 64, "train.batch_size": args.batch,
                                      "train.steps": 10**9, "train.precision": precision,
                                      "train.threads": torch.get_num_threads(), "log.sample_every": 0,
                                      "variant.reuse_fake": reuse,
                                      "log.checkpoint_every": 0, "log.progress": False})
    return Trainer(host, cfg, tmp / f"gancore-{precision}-{reuse}", echo=quiet)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precisions", nargs="+", default=["fp32", "auto"])
    p.add_argument("--reuse", choices=["off", "on", "both"], default="both",
                   help="variant.reuse_fake for the gancore sides (both: each precision with and without)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reuses = {"off": [False], "on": [True], "both": [False, True]}[args.reuse]
        sides = {f"gancore-{prec}" + ("-reuse_fake" if reuse else ""): gancore_trainer(prec, reuse, Path(tmp), args)
                 for prec in args.precisions for reuse in reuses}
        chosen = {name: t.precision.name for name, t in sides.items()}
        x = next(iter(sides.values())).sampler.x.clone()
        peer = ExamplesDCGAN(x, batch_size=args.batch)
        run = {name: (lambda t=t: t.advance(args.block)) for name, t in sides.items()}
        run["examples"] = lambda: [peer.step() for _ in range(args.block)]
        for fn in run.values():
            for _ in range(max(1, args.warmup // args.block)):
                fn()
        seconds = dict.fromkeys(run, 0.0)
        names = list(run)
        per_round: dict[str, list[float]] = {name: [] for name in run}
        for i in range(args.rounds):
            for name in names[i % len(names):] + names[:i % len(names)]:
                start = time.perf_counter()
                run[name]()
                took = time.perf_counter() - start
                seconds[name] += took
                per_round[name].append(args.batch * args.block / took)
    images = args.batch * args.block * args.rounds
    ips = {k: images / v for k, v in seconds.items()}
    row = {"machine": cpu(), "image_size": 64, "batch": args.batch, "iterations_each": args.block * args.rounds,
           "precision_chosen": chosen, "images_per_s": ips, "images_per_s_per_round": per_round,
           "ratio": {name: ips[name] / ips["examples"] for name in sides}, "command": " ".join(sys.argv)}
    print(json.dumps(row, indent=1))
    if args.out:
        args.out.write_text(json.dumps(row, indent=1) + "\n")


if __name__ == "__main__":
    main()
