"""Compare DCGAN settings on the digits: judge scores and sample grids per config.

    python benchmarks/dcgan_sweep.py OUT_DIR "train.steps=1500" "train.steps=800;variant.generator_width=64"
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from digit_judge import fit_judge, judge  # noqa: E402

from gancore.inference import generate  # noqa: E402
from gancore.app import load_plugins  # noqa: E402
from gancore.testing import make_config, train  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    host = load_plugins()
    clf, acc = fit_judge()
    print(f"judge accuracy on held-out real digits: {acc:.3f}")
    for i, spec in enumerate(sys.argv[2:]):
        over = {"log.progress": False, "log.sample_every": 0}
        for item in filter(None, spec.split(";")):
            k, v = item.split("=", 1)
            over[k] = json.loads(v) if v[:1] in "0123456789-[{tn" else v
        cfg = make_config(host, "dcgan", over)
        t = time.perf_counter()
        train(host, cfg, out / f"run{i}")
        secs = time.perf_counter() - t
        fake, _ = generate(host, out / f"run{i}", n=1000, seed=0)
        grids = sorted((out / f"run{i}" / "samples").glob("*.png"))
        if len(sys.argv) > 2 and grids and i < 8 and "GRID_DIR" in __import__("os").environ:
            import shutil

            shutil.copy(grids[-1], Path(__import__("os").environ["GRID_DIR"]) / f"grid{i}.png")
        print(json.dumps({"config": spec, "seconds": round(secs, 1), **judge(clf, fake)}), flush=True)


if __name__ == "__main__":
    main()
