"""FID at dataset scale (issue 17): `gancore eval --metric fid --n N` with the standard FID network.

A DCGAN trained 2 steps at 64x64 (its samples cost what any 64x64 generator's cost next to the
extractor) is evaluated with `fid-inception` for each N, in a fresh process each time, timing the
command and sampling its anonymous memory (RssAnon, every 50 ms). The network's weights are random
in the published layout (converted by `gancore weights convert`): the real ones are not on this
machine, and the time and memory do not depend on their values. The real set is the digits' test
split at 64x64 (360 images): the first command computes and caches its statistics, the later ones
reuse them, and the table says which.

    python benchmarks/fid_scale.py --n 1000 50000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def rss_anon_mb(pid: int) -> int:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RssAnon MB, and stderr+stdout of ``cmd``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = [0]

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], rss_anon_mb(proc.pid))
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out[-2000:]}")
    return time.perf_counter() - t0, peak[0], out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=[1000, 50000])
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--out", type=Path, default=HERE / "results" / "fid_scale.json")
    args = p.parse_args()

    import os

    import torch

    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_fid_inception import random_state  # the tests' random weights in the published layout

    work = Path(tempfile.mkdtemp(prefix="gancore-fid-scale-"))
    env = {**os.environ, "GANCORE_CACHE": str(work / "cache")}
    pth = work / "random_inception.pth"
    torch.save(random_state(), pth)
    weights = work / "fid_inception.safetensors"
    digest = hashlib.sha256(pth.read_bytes()).hexdigest()
    gancore = [sys.executable, "-m", "gancore"]
    subprocess.run([*gancore, "weights", "convert", str(pth), "--out", str(weights), "--sha256", digest],
                   check=True, capture_output=True, env=env)
    run = work / "run"
    subprocess.run([*gancore, "run", "dcgan", "--out", str(run), "--set", f"data.image_size={args.image_size}",
                    "--set", "train.steps=2", "--set", "log.progress=false", "--set", "log.sample_every=0"],
                   check=True, capture_output=True, env=env)

    rows = []
    for n in args.n:
        seconds, peak, _ = timed([*gancore, "eval", str(run), "--metric", "fid", "--n", str(n),
                                  "--set", "eval.metrics.fid.extractor=fid-inception", "--set", f"eval.metrics.fid.weights={weights}",
                                  "--set", "eval.metrics.fid.real_split=test"], env=env)
        result = json.loads((run / "eval" / "fid_step_0000002.json").read_text())
        prov = result["provenance"]
        rows.append({"n": n, "seconds": seconds, "metric_seconds": prov["seconds"], "peak_rss_anon_mb": peak,
                     "n_real": prov["n_real"], "real_stats_reused": prov["real_stats_reused"],
                     "fid": result["values"]["fid"]})
        r = rows[-1]
        print(f"n={n:>6}  {seconds:8.1f} s  ({n / r['metric_seconds']:.1f} samples/s through the metric)  "
              f"peak RssAnon {peak} MB  real {r['n_real']} images, cache reused: {r['real_stats_reused']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "image_size": args.image_size,
                                    "threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
