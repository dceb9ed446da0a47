"""What ``train.allocator = keep`` costs in memory: peak anonymous RSS of a training process, keep against system.

Each (run, allocator) trains in a fresh process for ``--steps`` iterations (after one untimed first
step); a thread in that process samples ``RssAnon`` from /proc every 10 ms (file-backed pages of the
memory map do not count). ``keep`` makes glibc's malloc hold freed memory in the process instead of
returning it (mallopt: ``gancore/kernel/allocator.py``), so its peak is the cost of the lever;
``system`` is malloc as it is.

    python benchmarks/speed/allocator_memory.py --out benchmarks/results/allocator_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from data_scale import RSS_WATCH  # noqa: E402
from peer import cpu  # noqa: E402

RUNS = {
    "dcgan-64px-w64": ("dcgan", {"data.image_size": 64, "variant.generator_width": 64, "variant.critic_width": 64}),
    "dcgan": ("dcgan", {}),
    "cyclegan": ("cyclegan", {}),
    "wgan-gp-grid": ("wgan", {"variant.mode": "gp", "data.name": "gaussian-grid"}),
}

CHILD = RSS_WATCH + r"""
import json, sys, tempfile, time
from gancore.app import load_plugins
from gancore.kernel import Trainer
from gancore.testing import make_config, quiet
variant, over, steps = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
allocator, threads = sys.argv[4], sys.argv[5]
host = load_plugins()
cfg = make_config(host, variant, {**over, "train.steps": steps + 1, "train.allocator": allocator,
                                  "train.threads": int(threads), "log.progress": False, "log.sample_every": 0,
                                  "log.checkpoint_every": 0, "log.every": 10**6})
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(host, cfg, tmp + "/run", echo=quiet)
    trainer.advance(1)
    before = peak[0]
    started = time.perf_counter()
    trainer.advance(steps)
    took = time.perf_counter() - started
    time.sleep(0.05)
print(json.dumps({"peak_rss_anon_mb": peak[0], "after_first_step_mb": before, "it_per_s": steps / took}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows = []
    for name in args.runs:
        variant, over = RUNS[name]
        row: dict = {"run": name}
        for allocator in ("system", "keep"):
            out = subprocess.run([sys.executable, "-c", CHILD, variant, json.dumps(over), str(args.steps), allocator,
                                  str(args.threads)], check=True, capture_output=True, text=True).stdout
            row[allocator] = json.loads(out.strip().splitlines()[-1])
        row["keep_over_system"] = row["keep"]["peak_rss_anon_mb"] / row["system"]["peak_rss_anon_mb"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"machine": cpu(), "steps": args.steps, "threads": args.threads, "command": " ".join(sys.argv),
              "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
