"""The VAE against the VAE-GAN on the built-in digits: reconstructions keep the digit, samples are sharper?

Trains ``gancore run vae`` and ``gancore run vaegan`` (their defaults) on the digits' fixed 80% train
split with the same seed, then, for each:

- reconstructs the held-out 20% (``gancore translate``'s path: the decoded posterior mean) and lets
  the project's digit classifier (``digits-cnn-v1``, trained on real digits only) read them: "kept" is
  the share read as the source digit's class (the classifier's accuracy on the real test digits is
  the ceiling);
- decodes 1,000 draws from the prior N(0, I) (``gancore sample``'s path) and computes their FID on
  that classifier's features against all 1,797 real digits (lower: closer to real digits'
  statistics; the target is VAE-GAN below VAE), and the share the classifier reads with confidence
  above 0.9 (a blurry digit is an unsure one).

    python benchmarks/vae.py --seeds 0 [--steps N]
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


def train(out: Path, variant: str, seed: int, steps: int | None, sets: list[str]) -> float:
    cmd = [sys.executable, "-m", "gancore", "run", variant, "--out", str(out), "--set", "data.split=train",
           "--set", f"train.seed={seed}", "--set", "log.progress=false",
           *(["--set", f"train.steps={steps}"] if steps else []), *[x for kv in sets for x in ("--set", kv)]]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=None, help="train.steps for both (default: each variant's)")
    ap.add_argument("--variants", nargs="+", default=["vae", "vaegan"])
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="extra settings for every run (repeatable)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "vae.json")
    args = ap.parse_args()

    import torch

    from gancore.data.digits import Digits
    from gancore.inference import draw, load_model, translate_images
    from gancore.metrics.extractors import DigitClassifier
    from gancore.metrics.stats import frechet_of_features
    from gancore.app import load_plugins

    classifier = DigitClassifier()
    test = Digits(Digits.Config(split="test")).load()
    real = Digits(Digits.Config(split="all")).load()
    with torch.no_grad():
        real_feats, _ = classifier.run(real.x)
        _, test_probs = classifier.run(test.x)
    host = load_plugins()
    results: dict = {"real_test_digits_kept": float((test_probs.argmax(1) == test.y).float().mean()), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for variant in args.variants:
                run = Path(tmp) / f"{variant}-{seed}"
                seconds = train(run, variant, seed, args.steps, args.sets)
                model, ckpt = load_model(host, run)
                with torch.no_grad():
                    rec = translate_images(model, test.x, "a2b")
                    _, rec_probs = classifier.run(rec)
                    samples, _ = draw(model, 1000, seed=1)
                    feats, probs = classifier.run(samples)
                row = {"variant": variant, "seed": seed, "steps": ckpt.step, "train_seconds": round(seconds, 1),
                       "reconstruction_digit_kept": float((rec_probs.argmax(1) == test.y).float().mean()),
                       "reconstruction_mse": float((rec - test.x).pow(2).mean()),
                       "sample_fid_digits_cnn": float(frechet_of_features(feats.numpy(), real_feats.numpy())),
                       "sample_confident_share": float((probs.max(1).values > 0.9).float().mean())}
                results["runs"].append(row)
                print(json.dumps(row))
                if seed == args.seeds[0]:
                    subprocess.run([sys.executable, "-m", "gancore", "sample", str(run), "--n", "64", "--out",
                                    str(args.out.with_name(f"{variant}_samples.png"))], check=True,
                                   stdout=subprocess.DEVNULL)
                    grids = sorted((run / "samples").glob("step_*.png"))
                    if grids:
                        args.out.with_name(f"{variant}_grid.png").write_bytes(grids[-1].read_bytes())
    results["setup"] = {"steps": args.steps, "sets": args.sets, "classifier": classifier.name,
                        "test_images": len(test.x), "fid_real_images": len(real.x), "fid_samples": 1000,
                        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                        "torch": torch.__version__, "command": "python benchmarks/vae.py " + " ".join(sys.argv[1:])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
