"""Data at scale: packing, and training from a pack with memory that does not grow with the dataset.

Writes procedurally generated RGB images (no download: coloured gradients with random discs, PNG)
into a folder, packs it with ``gancore data pack image-folder`` (worker processes), then trains
DCGAN from the pack for a few steps in a fresh process and reports: pack time and images/s, the time
from the start of the process to the first step, the peak anonymous memory while training
(``RssAnon`` from /proc, sampled every 10 ms: file-backed pages of the memory map do not count),
and steps/s. For the smallest set it also trains from the same images held in memory
(``image-folder``, float32): its memory and start-up in a process of its own, and its speed against
the pack's side by side in one process (alternating blocks of 10 steps, 8 rounds, the order
rotating), the ratio pack / in memory, and the folder decoded on the fly in worker processes
(``data.stream``) / pack; and the digits run's peak as the reference for "flat".

    python benchmarks/data_scale.py --sizes 10000 50000 200000 --image-size 64
    python benchmarks/data_scale.py --sizes 20000 --image-size 256 --steps 5
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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: Child-process source that samples the process's peak anonymous RSS (MB) into ``peak[0]`` every 10 ms.
RSS_WATCH = r"""
import threading, time
peak = [0]
def rss_anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) // 1024
    return 0
def watch():
    while True:
        peak[0] = max(peak[0], rss_anon()); time.sleep(0.01)
threading.Thread(target=watch, daemon=True).start()
"""

DRIVER = RSS_WATCH + r"""
import json, sys
started = time.perf_counter()
from gancore.kernel import Trainer
from gancore.app import load_plugins
from gancore.testing import make_config, quiet
host = load_plugins()
over = json.loads(sys.argv[1]); steps = int(sys.argv[2])
cfg = make_config(host, "dcgan", {**over, "train.steps": steps + 1, "log.progress": False, "log.sample_every": 0,
                                  "log.checkpoint_every": 0, "log.every": 10**6})
trainer = Trainer(host, cfg, sys.argv[3], echo=quiet)
trainer.advance(1)
first = time.perf_counter() - started
t0 = time.perf_counter(); trainer.advance(steps); dt = time.perf_counter() - t0
peak[0] = max(peak[0], rss_anon())
print(json.dumps({"first_step_s": first, "steps_per_s": steps / dt, "peak_rss_anon_mb": peak[0]}))
"""


RATIO_DRIVER = r"""
import json, sys, time
from gancore.kernel import Trainer
from gancore.app import load_plugins
from gancore.testing import make_config, quiet
host = load_plugins()
sides = json.loads(sys.argv[1]); rounds, block = int(sys.argv[2]), int(sys.argv[3])
trainers = {}
for name, over in sides.items():
    cfg = make_config(host, "dcgan", {**over, "train.steps": 10**9, "log.progress": False, "log.sample_every": 0,
                                      "log.checkpoint_every": 0, "log.every": 10**6})
    trainers[name] = Trainer(host, cfg, sys.argv[4] + "-" + name, echo=quiet)
    trainers[name].advance(3)  # warm up
seconds = dict.fromkeys(trainers, 0.0)
names = list(trainers)
for r in range(rounds):  # alternate blocks, the order rotating every round
    for name in names[r % len(names):] + names[:r % len(names)]:
        t0 = time.perf_counter(); trainers[name].advance(block); seconds[name] += time.perf_counter() - t0
print(json.dumps({name: rounds * block / s for name, s in seconds.items()}))
"""


def _write(args: tuple[Path, int, int, int]) -> None:
    from PIL import Image

    folder, start, stop, size = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        img = (rng.random(3)[:, None, None] * ramp[None, :, None] + rng.random(3)[:, None, None] * ramp[None, None, :])
        yy, xx = np.mgrid[:size, :size]
        for _ in range(3):
            cy, cx, r = rng.random(3) * [size, size, size / 4]
            img[:, (yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.random(3)[:, None]
        pixels = (np.clip(img, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        Image.fromarray(pixels).save(folder / f"{i:07d}.png", compress_level=1)


def make_images(folder: Path, n: int, size: int, jobs: int) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    step = 2000
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_write, [(folder, s, min(n, s + step), size) for s in range(0, n, step)]))
    return time.perf_counter() - started


def drive(over: dict, steps: int, run_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(over), str(steps), str(run_dir)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000, 200000])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=30, help="Timed training steps after the first.")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--root", type=Path, default=None, help="Where the images and packs go (default: a temp dir).")
    p.add_argument("--out", type=Path, default=HERE / "results" / "data_scale.json")
    args = p.parse_args()
    net = {"variant.generator_width": 32, "variant.critic_width": 32, "train.batch_size": args.batch}
    rows = []
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        root = Path(tmp)
        digits = drive({**net, "data.image_size": args.image_size}, args.steps, root / "run-digits")
        print(f"digits (in memory): peak RssAnon {digits['peak_rss_anon_mb']} MB", flush=True)
        for n in args.sizes:
            folder = root / f"images-{n}"
            made = make_images(folder, n, args.image_size, args.workers)
            pack = root / f"images-{n}.pack"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "gancore", "data", "pack", "image-folder", "--out", str(pack),
                            "--set", f"data.path={folder}", "--set", f"data.image_size={args.image_size}",
                            "--workers", str(args.workers), "--no-progress"], check=True, capture_output=True)
            pack_s = time.perf_counter() - started
            streamed = {**net, "data.name": "pack", "data.path": str(pack), "data.resident_mb": 0}
            row = {"n": n, "image_size": args.image_size, "make_s": round(made, 1), "pack_s": round(pack_s, 1),
                   "pack_images_per_s": round(n / pack_s, 1), "pack_mb": round(pack.stat().st_size / 2**20, 1),
                   "pack": drive(streamed, args.steps, root / f"run-pack-{n}")}
            need = n * 3 * args.image_size**2 * 4  # the float32 the in-memory source holds
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            if n == min(args.sizes) and need > 0.4 * ram:
                row["memory_skipped"] = f"in memory these images need {need / 2**30:.1f} GiB of float32"
            elif n == min(args.sizes):  # the same images held in memory: its own run for memory and start-up,
                memory = {**net, "data.name": "image-folder", "data.path": str(folder),
                          "data.image_size": args.image_size}
                row["memory"] = drive(memory, args.steps, root / f"run-mem-{n}")
                # and speed side by side in one process: alternating blocks of steps, the order rotating
                decoding = {**memory, "data.stream": True, "data.workers": args.workers}
                done = subprocess.run([sys.executable, "-c", RATIO_DRIVER, json.dumps({
                                       "memory": memory, "pack": streamed, "folder-stream": decoding}),
                                       "8", "10", str(root / f"ratio-{n}")], capture_output=True, text=True, check=True)
                speeds = json.loads(done.stdout.strip().splitlines()[-1])
                row["side_by_side_steps_per_s"] = speeds
                row["pack_over_memory"] = round(speeds["pack"] / speeds["memory"], 3)
                row["folder_stream_over_pack"] = round(speeds["folder-stream"] / speeds["pack"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
            for f in folder.iterdir():
                f.unlink()
            pack.unlink()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "steps": args.steps, "batch": args.batch,
                                    "digits": digits, "runs": rows}, indent=2) + "\n")
    print(f"\n{machine}; dcgan width 32, batch {args.batch}, {args.steps} timed steps")
    print(f"{'images':>8} {'size':>5} {'pack s':>7} {'img/s':>8} {'first step s':>12} {'peak anon MB':>12} "
          f"{'steps/s':>8} {'pack/memory':>11}")
    print(f"{'digits':>8} {args.image_size:>5} {'':>7} {'':>8} {digits['first_step_s']:>12.1f} "
          f"{digits['peak_rss_anon_mb']:>12} {digits['steps_per_s']:>8.2f}")
    for r in rows:
        ratio = f"{r['pack_over_memory']:.3f}" if "pack_over_memory" in r else ""
        print(f"{r['n']:>8} {r['image_size']:>5} {r['pack_s']:>7.1f} {r['pack_images_per_s']:>8.0f} "
              f"{r['pack']['first_step_s']:>12.1f} {r['pack']['peak_rss_anon_mb']:>12} "
              f"{r['pack']['steps_per_s']:>8.2f} {ratio:>11}")
        if "memory_skipped" in r:
            print(f"{'(memory)':>8} {r['image_size']:>5}  not run: {r['memory_skipped']}")
        if "memory" in r:
            print(f"{'(memory)':>8} {r['image_size']:>5} {'':>7} {'':>8} {r['memory']['first_step_s']:>12.1f} "
                  f"{r['memory']['peak_rss_anon_mb']:>12} {r['memory']['steps_per_s']:>8.2f}")


if __name__ == "__main__":
    main()
