"""InfoGAN on the built-in digits: does the categorical code become the digit class, unsupervised?

Trains ``gancore run infogan`` (its defaults: 10 categories, 2 continuous codes, 16 noise, the
1,797 digits at 16x16, no labels seen) once per seed, then draws 1,000 samples, 100 with each
categorical code fixed (``--code K``'s path, the other codes and the noise drawn as in training),
and lets the project's digit classifier (``digits-cnn-v1``, trained on real digits only) read them.
The codes are matched to classes by the Hungarian assignment on that confusion matrix
(scipy's ``linear_sum_assignment``); the accuracy is the share of samples read as their code's
matched class (the paper reports 95% on MNIST; the target here is 90% on each seed).

The continuous codes' effect: for 200 (noise, category) draws, each continuous code swept over 9
values from -1 to 1 with the rest fixed; reported are the share of sweeps whose classifier reading
never changes (the code keeps the digit), and the Pearson correlation of the code's value with two
measured properties of the image: its slant (the intensity-weighted covariance of x and y over the
variance of y: positive leans right) and its width (the intensity-weighted standard deviation of x).

    python benchmarks/infogan.py --steps 3000 --seeds 0 1 2
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


def train(out: Path, steps: int | None, seed: int, sets: list[str]) -> float:
    """One ``gancore run infogan`` (its default steps when ``steps`` is None)."""
    cmd = [sys.executable, "-m", "gancore", "run", "infogan", "--out", str(out), "--set", f"train.seed={seed}",
           "--set", "log.progress=false", *(["--set", f"train.steps={steps}"] if steps else []),
           *[x for kv in sets for x in ("--set", kv)]]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def shape_measures(images):
    """Slant and width of each image ``[N, 1, H, W]`` in [-1, 1], from its intensity moments."""
    import torch

    w = (images[:, 0].float() + 1) / 2  # ink in [0, 1]
    h, s = w.shape[-2:]
    ys = torch.arange(h, dtype=torch.float32)[None, :, None].expand_as(w)
    xs = torch.arange(s, dtype=torch.float32)[None, None, :].expand_as(w)
    mass = w.sum((1, 2)).clamp_min(1e-6)
    mx, my = (w * xs).sum((1, 2)) / mass, (w * ys).sum((1, 2)) / mass
    dx, dy = xs - mx[:, None, None], ys - my[:, None, None]
    cov = (w * dx * -dy).sum((1, 2)) / mass  # y grows downwards: -dy is up
    var_y = (w * dy * dy).sum((1, 2)) / mass
    return cov / var_y.clamp_min(1e-6), ((w * dx * dx).sum((1, 2)) / mass).sqrt()


def hungarian(codes, pred, k: int) -> dict:
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    confusion = np.zeros((k, 10), dtype=np.int64)
    np.add.at(confusion, (codes, pred), 1)
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    return {"hungarian_accuracy": float(confusion[rows, cols].sum() / len(codes)),
            "code_to_digit": {int(r): int(c) for r, c in zip(rows, cols, strict=True)},
            "confusion": confusion.tolist()}


def categorical_accuracy(model, classifier, second=None, n: int = 1000) -> dict:
    """The Hungarian accuracy of 1,000 samples (100 per code) read by the digits CNN, and by ``second``
    (the logistic regression of ``digit_judge.py`` on the samples area-downsampled to 8x8) when given."""
    import torch

    from gancore.inference import draw, sample_codes

    k = model.variant.config.categories
    per = n // k
    codes = torch.arange(k).repeat_interleave(per)
    x, _ = draw(model, len(codes), seed=1, codes={"category": codes})
    for code in range(k):  # the CLI's --code K path gives the same samples for one class
        assert sample_codes(model, per, code)["category"].eq(code).all()
    with torch.no_grad():
        pred = classifier.run(x)[1].argmax(1)
    out = hungarian(codes.numpy(), pred.numpy(), k)
    if second is not None:
        from digit_judge import to_8x8

        out["second_judge"] = hungarian(codes.numpy(), second.predict(to_8x8(x)), k)
    return out


def continuous_effect(model, classifier, draws: int = 200, steps: int = 9) -> dict:
    import torch

    from gancore.kernel.drawing import evaluating

    variant, gen = model.variant, model.generator(True)
    cfg = variant.config
    rng = torch.Generator().manual_seed(2)
    out = {}
    with evaluating(gen) as g:
        z = g.sample_latent(draws, generator=rng)
        cat = torch.randint(cfg.categories, (draws,), generator=rng) if cfg.categories else None
        values = torch.linspace(-1, 1, steps)
        for i in range(cfg.continuous):
            name = f"c{i + 1}"
            base = {f"c{j + 1}": torch.zeros(draws, 1) for j in range(cfg.continuous)}
            images = []
            for v in values:
                codes = {**base, name: torch.full((draws, 1), float(v))}
                if cat is not None:
                    codes["category"] = cat
                images.append(g(z, codes=codes))
            x = torch.stack(images, 1)  # [draws, steps, 1, H, W]
            pred = classifier.run(x.flatten(0, 1))[1].argmax(1).view(draws, steps)
            slant, width = shape_measures(x.flatten(0, 1))
            v = values.repeat(draws)
            out[name] = {"digit_unchanged_along_sweep": float((pred == pred[:, :1]).all(1).float().mean()),
                         "corr_with_slant": float(torch.corrcoef(torch.stack([v, slant]))[0, 1]),
                         "corr_with_width": float(torch.corrcoef(torch.stack([v, width]))[0, 1]),
                         "slant_at_-1_and_1": [float(slant.view(draws, steps)[:, 0].mean()),
                                               float(slant.view(draws, steps)[:, -1].mean())],
                         "width_at_-1_and_1": [float(width.view(draws, steps)[:, 0].mean()),
                                               float(width.view(draws, steps)[:, -1].mean())]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="train.steps (default: the plugin's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra settings for every run (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings at once (each with train.threads=1 when >1)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "infogan.json")
    args = ap.parse_args()

    from concurrent.futures import ThreadPoolExecutor

    import torch
    from digit_judge import fit_judge

    from gancore.app import load_plugins
    from gancore.inference import load_model
    from gancore.metrics.extractors import DigitClassifier

    classifier = DigitClassifier()
    second, second_test = fit_judge()
    host = load_plugins()
    results: dict = {"runs": []}
    sets = args.sets + (["train.threads=1"] if args.jobs > 1 and not any(s.startswith("train.threads=")
                                                                         for s in args.sets) else [])
    with tempfile.TemporaryDirectory() as tmp:
        runs = {seed: Path(tmp) / f"infogan-{seed}" for seed in args.seeds}
        with ThreadPoolExecutor(args.jobs) as pool:
            seconds = dict(zip(args.seeds, pool.map(lambda seed: train(runs[seed], args.steps, seed, sets),
                                                     args.seeds), strict=True))
        for seed, run in runs.items():
            model, _ = load_model(host, run)
            row = {"seed": seed, "steps": model.config.train.steps, "train_seconds": round(seconds[seed], 1),
                   **categorical_accuracy(model, classifier, second),
                   "continuous": continuous_effect(model, classifier)}
            results["runs"].append(row)
            print(json.dumps({"seed": seed, "steps": row["steps"], "seconds": row["train_seconds"],
                              "cnn": row["hungarian_accuracy"],
                              "second": row["second_judge"]["hungarian_accuracy"],
                              "code_to_digit": row["code_to_digit"]}), flush=True)
            if args.out.suffix == ".json" and seed == args.seeds[0]:
                grid = args.out.with_name("infogan_grid.png")
                subprocess.run([sys.executable, "-m", "gancore", "sample", str(run), "--n", "10", "--code", "0",
                                "--out", str(grid.with_name("infogan_code0.png"))], check=True,
                               stdout=subprocess.DEVNULL)
                samples = sorted((run / "samples").glob("step_*.png"))
                if samples:
                    grid.write_bytes(samples[-1].read_bytes())
    accs = [r["hungarian_accuracy"] for r in results["runs"]]
    seconds_ = [r["second_judge"]["hungarian_accuracy"] for r in results["runs"]]
    results["summary"] = {"cnn_per_seed": accs, "second_judge_per_seed": seconds_,
                          "min": min(accs + seconds_), "target": 0.93}
    results["setup"] = {"steps": args.steps, "sets": sets, "classifier": classifier.name,
                        "second_judge": f"logistic regression on the real 8x8 training split "
                                        f"(held-out accuracy {second_test:.3f}); samples area-downsampled to 8x8",
                        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                        "jobs": args.jobs, "torch": torch.__version__,
                        "command": "python benchmarks/infogan.py " + " ".join(sys.argv[1:])}
    print(json.dumps(results["summary"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
