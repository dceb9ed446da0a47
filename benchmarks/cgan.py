"""Conditional generation judged independently: label accuracy, class coverage and TSTR.

Trains ``cgan`` on the digits (or evaluates an existing run with ``--run``), then:
- label accuracy: 1,000 samples, 100 per class, classified by a judge trained on the real
  digits only (logistic regression on the 8x8 originals; 96.9% on held-out real digits);
- TSTR: the same kind of classifier trained only on 1,800 generated samples (180 per class),
  scored on the held-out real digits (the fixed 20% test split).

    python benchmarks/cgan.py --set variant.conditioning=projection --out benchmarks/results/cgan.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from digit_judge import fit_judge, to_8x8  # noqa: E402


def evaluate(run: Path) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from gancore.data.digits import digits_split
    from gancore.inference import draw, load_model
    from gancore.labels import class_rows
    from gancore.app import load_plugins

    judge, real_acc = fit_judge()
    model, ckpt = load_model(load_plugins(), run)
    labels = class_rows(100, 10)
    x, used = draw(model, len(labels), seed=1, labels=labels)
    pred = judge.predict(to_8x8(x))
    accuracy = float((pred == labels.numpy()).mean())
    covered = int(len(set(pred.tolist())))
    per_class = [float((pred[labels.numpy() == k] == k).mean()) for k in range(10)]
    train_labels = class_rows(180, 10)
    synth, _ = draw(model, len(train_labels), seed=2, labels=train_labels)
    d = load_digits()
    test = digits_split(len(d.target), "test").numpy()
    tstr = LogisticRegression(max_iter=2000, C=0.5).fit(to_8x8(synth), train_labels.numpy())
    tstr_acc = float(tstr.score(d.images[test].reshape(len(test), -1) / 16.0, d.target[test]))
    return {"step": ckpt.step, "generator": used, "label_accuracy": accuracy,
            "classes_covered": covered, "per_class_accuracy": per_class,
            "tstr_accuracy": tstr_acc, "real_trained_accuracy": real_acc,
            "config": ckpt.config}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="Evaluate this run instead of training one.")
    p.add_argument("--set", dest="sets", action="append", default=[], help="--set for the training run.")
    p.add_argument("--out", type=Path, default=HERE / "results" / "cgan.json")
    args = p.parse_args()
    seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            cmd = [sys.executable, "-m", "gancore", "run", "cgan", "--out", str(run),
                   "--set", "log.progress=false", *[a for s in args.sets for a in ("--set", s)]]
            started = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds = time.perf_counter() - started
        result = evaluate(run)
    result["train_seconds"] = seconds
    torch.set_printoptions(precision=3)
    print(f"cgan on digits, step {result['step']} ({result['generator']} generator)"
          + (f", trained in {seconds:.0f} s" if seconds else ""))
    print(f"{'label accuracy (target >= 95%)':<36} {100 * result['label_accuracy']:6.1f}%")
    print(f"{'classes covered (target 10)':<36} {result['classes_covered']:6d}")
    print(f"{'TSTR accuracy (target >= 85%)':<36} {100 * result['tstr_accuracy']:6.1f}%")
    print(f"{'real-trained reference':<36} {100 * result['real_trained_accuracy']:6.1f}%")
    print("per class:", " ".join(f"{k}:{100 * a:.0f}%" for k, a in enumerate(result["per_class_accuracy"])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
