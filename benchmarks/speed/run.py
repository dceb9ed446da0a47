"""gancore against plain PyTorch loops, side by side in one process.

For each variant and precision: build gancore's trainer with its defaults (the ``auto`` levers of
the fast path), again with every lever off (the framework's own cost), and a plain loop
(``reference.py``) on copies of the same networks and the same data; no sample grids or
checkpoints during the timing. Warm all up, then run blocks of iterations of each in turn (the
order rotates every round) and report images/second (batch x generator iterations / second),
the ratios gancore / reference, and peak memory. ``--fast`` adds a column with every lever on.
For WGAN-GP it also times one critic step with and without the gradient penalty (its cost).

    python benchmarks/speed/run.py                              # dcgan, wgan-gp, cyclegan; fp32; 32x32, batch 64
    python benchmarks/speed/run.py --precisions fp32 bf16 fp16 --image-size 64 --batch 128 --device cuda --fast
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from reference import CycleGANLoop, DCGANLoop, WGANGPLoop  # noqa: E402

VARIANTS = {
    "dcgan": ("dcgan", {}),
    "wgan-gp": ("wgan", {"variant.mode": "gp"}),
    "cyclegan": ("cyclegan", {}),
}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process-wide on the CPU


def build(variant: str, precision: str, args, tmp: Path, extra: dict):
    from gancore.kernel import Trainer
    from gancore.app import load_plugins
    from gancore.testing import make_config, quiet

    name, over = VARIANTS[variant]
    host = load_plugins()
    cfg = make_config(host, name, {**over, **extra, "train.steps": 10**9, "train.batch_size": args.batch,
                                   "train.precision": precision, "train.device": args.device,
                                   "data.image_size": args.image_size, "log.sample_every": 0,
                                   "log.checkpoint_every": 0, "log.progress": False})
    return Trainer(host, cfg, tmp / f"{variant}-{precision}-{len(list(tmp.iterdir()))}", echo=quiet)


def reference_for(variant: str, trainer, precision: str, args):
    nets = copy.deepcopy(trainer.built.nets)
    device = trainer.device
    common = {"x": trainer.sampler.x.clone(), "batch": args.batch, "device": device, "precision": precision}
    if variant == "dcgan":
        return DCGANLoop(nets.generator, nets.critic, nets.generator.latent_dim, **common)
    if variant == "wgan-gp":
        return WGANGPLoop(nets.generator, nets.critic, nets.generator.latent_dim, **common)
    critics = torch.nn.ModuleDict({**nets.critic, **nets.state})  # the plain loop keeps its pools beside D_a, D_b
    return CycleGANLoop(nets.generator, critics, trainer.cfg.variant.cycle_weight,
                        x_b=trainer.sampler.x_b.clone(), **common)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def measure(variant: str, precision: str, args, tmp: Path) -> dict:
    device = torch.device(args.device)
    sides = {"gancore": build(variant, precision, args, tmp, {}),  # defaults: the auto levers
             "gancore-plain": build(variant, precision, args, tmp, {"train.channels_last": "off",
                                                                    "train.fused_optimizer": "off"})}
    if args.fast:
        fast = {"train.channels_last": "on", "train.fused_optimizer": "on"}
        if args.compile:
            fast["train.compile"] = True
        sides["gancore-fast"] = build(variant, precision, args, tmp, fast)
    ref = reference_for(variant, sides["gancore-plain"], precision, args)  # plain layout, as a user writes it
    run = {name: (lambda t=t: t.advance(args.block)) for name, t in sides.items()}
    run["reference"] = lambda: [ref.step() for _ in range(args.block)]
    for fn in run.values():  # warm-up
        for _ in range(max(1, args.warmup // args.block)):
            fn()
    seconds = dict.fromkeys(run, 0.0)
    memory = dict.fromkeys(run, 0.0)
    names = list(run)
    for i in range(args.rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:  # the order rotates every round
            fn = run[name]
            peak_reset(device)
            seconds[name] += timed(fn, device)
            memory[name] = max(memory[name], peak_mb(device))
    images = args.batch * args.block * args.rounds
    row = {"variant": variant, "precision": precision, "image_size": args.image_size, "batch": args.batch,
           "iterations_each": args.block * args.rounds,
           "images_per_s": {k: images / v for k, v in seconds.items()},
           "peak_memory_mb": memory}
    row["ratio"] = row["images_per_s"]["gancore"] / row["images_per_s"]["reference"]
    row["ratio_plain"] = row["images_per_s"]["gancore-plain"] / row["images_per_s"]["reference"]
    if args.fast:
        row["ratio_fast"] = row["images_per_s"]["gancore-fast"] / row["images_per_s"]["reference"]
    if variant == "wgan-gp":
        row["penalty_cost"] = penalty_cost(sides["gancore-plain"], ref, args, device)
    return row


def penalty_cost(trainer, ref, args, device) -> dict:
    """Seconds of one critic step with the gradient penalty over one without it."""
    critic_phase = next(p for p in trainer.phases if p.player == "critic")

    def critic_step() -> None:
        trainer.runner.run(critic_phase, trainer.sampler.next(), trainer._context())

    regs = trainer.built.regularizers
    reps = max(4, args.block)
    out = {}
    with_gp = without = ref_with = ref_without = 0.0
    for _ in range(args.rounds):
        trainer.built.regularizers = regs
        with_gp += timed(lambda: [critic_step() for _ in range(reps)], device)
        trainer.built.regularizers = []
        without += timed(lambda: [critic_step() for _ in range(reps)], device)
        ref_with += timed(lambda: [ref.critic_step(True) for _ in range(reps)], device)
        ref_without += timed(lambda: [ref.critic_step(False) for _ in range(reps)], device)
    trainer.built.regularizers = regs
    out["gancore"] = with_gp / without
    out["reference"] = ref_with / ref_without
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--block", type=int, default=10, help="Iterations per timed block.")
    p.add_argument("--rounds", type=int, default=8, help="Alternating blocks per side (the order rotates).")
    p.add_argument("--warmup", type=int, default=10, help="Untimed iterations per side first.")
    p.add_argument("--fast", action="store_true", help="Also time gancore with every lever of its fast path on.")
    p.add_argument("--compile", action="store_true", help="Include train.compile in the fast path.")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    device = torch.device(args.device)
    where = machine(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            for precision in args.precisions:
                row = measure(variant, precision, args, Path(tmp))
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(f"\n{where}; {args.image_size}x{args.image_size}, batch {args.batch}, "
          f"{args.rounds} alternating blocks of {args.block} iterations per side after {args.warmup} warm-up")
    head = (f"{'variant':<9} {'prec':<5} {'reference':>10} {'gancore img/s':>13} {'ratio':>6} "
            f"{'levers off':>10} {'ratio':>6}")
    if args.fast:
        head += f" {'fast img/s':>10} {'ratio':>6}"
    print(head + f" {'peak MB (g/ref)':>16} {'GP step cost (g/ref)':>21}")
    for r in rows:
        ips = r["images_per_s"]
        line = (f"{r['variant']:<9} {r['precision']:<5} {ips['reference']:>10.1f} {ips['gancore']:>13.1f} "
                f"{r['ratio']:>6.3f} {ips['gancore-plain']:>10.1f} {r['ratio_plain']:>6.3f}")
        if args.fast:
            line += f" {ips['gancore-fast']:>10.1f} {r['ratio_fast']:>6.3f}"
        mem = r["peak_memory_mb"]
        line += f" {mem['gancore']:>7.0f}/{mem['reference']:<8.0f}"
        if "penalty_cost" in r:
            line += f" {r['penalty_cost']['gancore']:>9.2f}x/{r['penalty_cost']['reference']:.2f}x"
        print(line)
    if device.type == "cpu":
        print("(peak memory on the CPU is the process's maximum resident set, not per side)")
    out = args.out or HERE.parent / "results" / f"speed_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": where, "device": device.type, "args": vars(args) | {"out": str(out)},
                               "rows": rows}, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
