"""The Siamese GAN against its baselines, judged independently.

``generate``: ``gancore run siamese`` and ``gancore run dcgan`` on ``digits`` for the same number
of steps (each with its own defaults otherwise); the digit judge (logistic regression trained on
the real 8x8 digits only) reports class coverage, mean confidence and the Fréchet distance
between the judge's logits on 2,000 samples and on the real held-out digits.

``translate``: ``gancore run siamese --set variant.mode=translate`` and ``gancore run cyclegan``
on ``digits-pair`` for each ``b_style``, with the cyclegan run given the same wall time as the
siamese run (its step count is set from a short timing run). Label preservation of translated
held-out A digits, judged by a classifier trained on real domain-B images only, as in
``benchmarks/cyclegan.py``.

    python benchmarks/siamese.py generate
    python benchmarks/siamese.py translate --styles invert rotate
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cyclegan import evaluate as evaluate_translation  # noqa: E402
from digit_judge import fit_judge, to_8x8  # noqa: E402

from gancore.metrics.stats import frechet_of_features  # noqa: E402

MACHINE = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} threads"


def train(variant: str, out: Path, sets: list[str]) -> float:
    cmd = [sys.executable, "-m", "gancore", "run", variant, "--out", str(out), "--set", "log.progress=false",
           *[a for s in sets for a in ("--set", s)]]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def judge_generation(run: Path, n: int = 2000) -> dict:
    import numpy as np
    from sklearn.datasets import load_digits

    from gancore.data.digits import digits_split
    from gancore.inference import draw, load_model
    from gancore.app import load_plugins

    clf, _ = fit_judge()
    model, ckpt = load_model(load_plugins(), run)
    samples, _ = draw(model, n, seed=0)
    d = load_digits()
    real = (d.images.reshape(len(d.images), -1) / 16.0)[digits_split(len(d.images), "test").numpy()]
    fake = to_8x8(samples)
    probs = clf.predict_proba(fake)
    hist = np.bincount(probs.argmax(1), minlength=10) / len(fake)
    return {"step": ckpt.step, "classes_covered": int((hist >= 0.02).sum()),
            "min_class_share": float(hist.min()), "confidence": float(probs.max(1).mean()),
            "frechet_judge_logits": frechet_of_features(clf.decision_function(fake), clf.decision_function(real)),
            "n_samples": n, "n_real": len(real)}


def generate_table(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("siamese", "dcgan"):
            run = Path(tmp) / variant
            own = args.sets if variant == "siamese" else []
            seconds = train(variant, run, [f"train.steps={args.steps}", f"train.seed={args.seed}", *own])
            row = {"variant": variant, **judge_generation(run), "train_seconds": round(seconds, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"generate mode on digits, {args.steps} steps each, seed {args.seed}, on {MACHINE}")
    print(f"{'variant':<8} {'classes':>7} {'min share':>9} {'confidence':>10} {'FD(judge)':>9} {'train s':>7}")
    for r in rows:
        print(f"{r['variant']:<8} {r['classes_covered']:>7} {r['min_class_share']:>9.3f} {r['confidence']:>10.3f} "
              f"{r['frechet_judge_logits']:>9.2f} {r['train_seconds']:>7.1f}")
    real = judge_generation_real()
    print(f"(real held-out digits as 'samples': FD {real:.2f} between the train and test splits)")
    save(args.out, {"mode": "generate", "machine": MACHINE, "steps": args.steps, "seed": args.seed,
                    "real_train_vs_test_fd": real, "runs": rows})


def judge_generation_real() -> float:
    """The floor: Fréchet distance between the real train and test digits in the judge's space."""
    from sklearn.datasets import load_digits

    from gancore.data.digits import digits_split

    clf, _ = fit_judge()
    d = load_digits()
    x = d.images.reshape(len(d.images), -1) / 16.0
    tr, te = digits_split(len(x), "train").numpy(), digits_split(len(x), "test").numpy()
    return frechet_of_features(clf.decision_function(x[tr]), clf.decision_function(x[te]))


def translate_table(args) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for style in args.styles:
            data = [f"data.b_style={style}", f"train.seed={args.seed}"]
            run = Path(tmp) / f"siamese-{style}"
            seconds = train("siamese", run, ["variant.mode=translate", *data, *args.sets])
            row = {"variant": "siamese", **evaluate_translation(run, style), "train_seconds": round(seconds, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            # cyclegan at equal wall time: two timing runs give its start-up and seconds per step.
            quiet = [*data, "log.sample_every=0", "log.checkpoint_every=0"]
            short = train("cyclegan", Path(tmp) / f"probe50-{style}", [*quiet, "train.steps=50"])
            long = train("cyclegan", Path(tmp) / f"probe150-{style}", [*quiet, "train.steps=150"])
            per_step = max((long - short) / 100, 1e-3)
            steps = max(50, int((seconds - (short - 50 * per_step)) / per_step))
            run = Path(tmp) / f"cyclegan-{style}"
            seconds = train("cyclegan", run, [*data, f"train.steps={steps}"])
            row = {"variant": "cyclegan", **evaluate_translation(run, style), "train_seconds": round(seconds, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"translate mode on digits-pair at equal wall time, seed {args.seed}, on {MACHINE}")
    print(f"{'b_style':<8} {'variant':<9} {'steps':>6} {'preservation':>12} {'target':>6} {'train s':>7}")
    for r in rows:
        target = "85%" if r["variant"] == "siamese" else ""
        print(f"{r['b_style']:<8} {r['variant']:<9} {r['step']:>6} {100 * r['preservation']:>11.1f}% {target:>6} "
              f"{r['train_seconds']:>7.1f}")
    save(args.out, {"mode": "translate", "machine": MACHINE, "seed": args.seed, "runs": rows})


def save(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["generate", "translate"])
    p.add_argument("--steps", type=int, default=1500, help="generate: steps for both variants.")
    p.add_argument("--styles", nargs="+", default=["invert", "rotate"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="sets", action="append", default=[], help="--set for the siamese runs.")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.mode == "generate":
        args.out = args.out or HERE / "results" / "siamese_generate.json"
        generate_table(args)
    else:
        args.out = args.out or HERE / "results" / "siamese_translate.json"
        translate_table(args)


if __name__ == "__main__":
    main()
