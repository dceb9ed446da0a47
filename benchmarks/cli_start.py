"""How fast the CLI starts (issue 15 item 6), and where `gancore run dcgan` spends its start.

Every command runs in a fresh interpreter, the commands taken in turn (round robin) so that all of
them see the same machine; each figure is the median (and the worst) of ``--repeats`` wall times.
``python -c pass`` and ``python -c "import torch"`` are timed beside them for scale.

Then `gancore run dcgan` is taken apart: a driver does what the command does, step by step, with
a clock between the steps (importing the CLI, loading the plugins, resolving the config, importing
torch, building the run: data, networks, run directory; the first step; the second and last step
with its checkpoint and sample grid), and the real command's wall time is measured beside it.

    python benchmarks/cli_start.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

RUN_DRIVER = r"""
import json, sys, time
marks = [("python start", 0.0, [])]
t0 = time.perf_counter()
WATCH = ("torch", "sklearn", "scipy", "torch._dynamo", "PIL.Image", "safetensors")
def mark(what):
    seen = {m for _, _, ms in marks for m in ms}
    new = [m for m in WATCH if m in sys.modules and m not in seen]
    marks.append((what, time.perf_counter() - t0, new))
import gancore.cli as cli
mark("import gancore.cli")
host = cli.host()
mark("load the plugins (built-ins, features, 8 variants)")
from gancore.config import build_raw, preset_settings, resolve
cfg = resolve(host, build_raw("dcgan", None, preset=preset_settings(host, "dcgan", None)),
              ["train.steps=2", "log.progress=false"])
mark("resolve the config")
import torch
mark("import torch")
from gancore.kernel import Trainer
mark("import the kernel")
trainer = Trainer(host, cfg, sys.argv[1], echo=lambda m: None)
mark("build: data (scikit-learn's digits), networks, run directory")
trainer.advance(1)
mark("first step")
trainer.train()
mark("second step, checkpoint, sample grid")
print("RESULT " + json.dumps({"marks": marks}))
"""


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    return dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=HERE / "results" / "cli_start.json")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gancore-cli-start-"))
    pack = work / "digits.gcpack"
    subprocess.run([sys.executable, "-m", "gancore", "data", "pack", "digits", "--out", str(pack), "--workers", "1"],
                   check=True, capture_output=True)
    gancore = [sys.executable, "-m", "gancore"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "gancore --help": [*gancore, "--help"],
        "gancore plugins": [*gancore, "plugins"],
        "gancore config dcgan": [*gancore, "config", "dcgan"],
        "gancore data info digits.gcpack": [*gancore, "data", "info", str(pack)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    runs: list[float] = []
    for i in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
        runs.append(wall([*gancore, "run", "dcgan", "--set", "train.steps=1", "--set", "log.progress=false",
                          "--out", str(work / f"run{i}")]))

    driver = subprocess.run([sys.executable, "-c", RUN_DRIVER, str(work / "driver")], capture_output=True, text=True)
    line = [ln for ln in driver.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise SystemExit(f"the run driver failed: {driver.stderr.strip()[-800:]}")
    parts = json.loads(line[0][len("RESULT "):])

    print(f"CLI start, {args.repeats} runs each, round robin ({platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')})")
    print(f"{'command':<34} {'median s':>9} {'worst s':>8}")
    summary = {}
    for name, values in times.items():
        summary[name] = {"median_s": statistics.median(values), "worst_s": max(values), "all_s": values}
        print(f"{name:<34} {statistics.median(values):>9.2f} {max(values):>8.2f}")
    summary["gancore run dcgan --set train.steps=1"] = {"median_s": statistics.median(runs), "worst_s": max(runs),
                                                        "all_s": runs}
    print(f"{'gancore run dcgan (1 step)':<34} {statistics.median(runs):>9.2f} {max(runs):>8.2f}")

    print("\nwhere `gancore run dcgan` spends its start (one driver run, seconds since the driver began):")
    prev = 0.0
    for what, at, new in parts["marks"][1:]:
        print(f"  {at - prev:>6.2f} s  {what}" + (f"  (imported here: {', '.join(new)})" if new else ""))
        prev = at
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "repeats": args.repeats,
                                    "commands": summary, "run_dcgan_parts": parts}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
