"""Unpaired translation judged independently: label preservation and cycle reconstruction.

For each ``b_style`` of the built-in ``digits-pair`` data: train ``gancore run cyclegan`` (its
defaults: 32x32, batch 16) on the train split, then translate the held-out A digits (the
digits' fixed 20% test split) to B. A classifier trained on *real* domain-B images of the train
split (never on translations) classifies the translations; the share classified as their
source digit is the label preservation. Also reports the cycle reconstruction error
mean |F(G(a)) - a| (images in [-1, 1]) and the training seconds per iteration.

    python benchmarks/cyclegan.py --styles invert rotate thicken
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from digit_judge import to_8x8  # noqa: E402


@functools.cache
def b_judge(style: str):
    """The classifier of real domain-B digits that judges translations, its held-out accuracy on
    real B, and the train and test ``digits-pair`` data it was made from (once per style)."""
    from sklearn.linear_model import LogisticRegression

    from gancore.translation.sources import DigitsPair

    train = DigitsPair(DigitsPair.Config(b_style=style, split="train")).load()
    test = DigitsPair(DigitsPair.Config(b_style=style, split="test")).load()
    judge = LogisticRegression(max_iter=3000, C=0.5).fit(to_8x8(train.x_b), train.y_b.numpy())
    return judge, float(judge.score(to_8x8(test.x_b), test.y_b.numpy())), train, test


def evaluate(run: Path, style: str) -> dict:
    import torch

    from gancore.errors import ConfigError
    from gancore.inference import load_model, translate_images
    from gancore.app import load_plugins

    judge, judge_acc, _, test = b_judge(style)
    model, ckpt = load_model(load_plugins(), run)
    fake_b = translate_images(model, test.x, "a2b")
    try:
        reconstruction = float((translate_images(model, fake_b, "b2a") - test.x).abs().mean())
    except ConfigError:  # one-way translators (siamese) have no B -> A generator
        reconstruction = None
    preservation = float((judge.predict(to_8x8(fake_b)) == test.y.numpy()).mean())
    init = json.loads((run / "init.json").read_text()) if (run / "init.json").exists() else {}
    return {"b_style": style, "step": ckpt.step, "preservation": preservation,
            "judge_accuracy_on_real_b": judge_acc, "reconstruction_l1": reconstruction,
            "n_test": len(test.x), "orientation": init.get("orientation", {}).get("summary", "off"),
            "torch": torch.__version__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", nargs="+", default=["invert", "rotate", "thicken"])
    p.add_argument("--set", dest="sets", action="append", default=[], help="--set for the training runs.")
    p.add_argument("--out", type=Path, default=HERE / "results" / "cyclegan.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for style in args.styles:
            run = Path(tmp) / style
            cmd = [sys.executable, "-m", "gancore", "run", "cyclegan", "--out", str(run),
                   "--set", f"data.b_style={style}", "--set", "log.progress=false",
                   *[a for s in args.sets for a in ("--set", s)]]
            started = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds = time.perf_counter() - started
            row = evaluate(run, style)
            row["train_seconds"] = round(seconds, 1)
            row["seconds_per_iteration"] = round(seconds / row["step"], 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    machine = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} threads"
    print(f"cyclegan on digits-pair, 32x32, batch 16, on {machine}")
    print(f"{'b_style':<8} {'preservation':>12} {'target':>7} {'recon L1':>9} {'s/iter':>7} {'judge':>6}")
    for r in rows:
        target = 0.8 if r["b_style"] == "thicken" else 0.9
        print(f"{r['b_style']:<8} {100 * r['preservation']:>11.1f}% {100 * target:>6.0f}% "
              f"{r['reconstruction_l1']:>9.3f} {r['seconds_per_iteration']:>7.3f} "
              f"{100 * r['judge_accuracy_on_real_b']:>5.1f}%")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "runs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
