"""pix2pix against an L1-only model trained the same way: is the digit kept, and is it sharp?

Trains ``gancore run pix2pix`` on its default ``digits-restore`` pairs (a damaged digit: blurred,
with a square erased -> the intact digit; the digits' fixed 80% train split) twice with the same
seed and schedule: the full model (adversarial + 100 L1) and ``variant.adversarial=false`` (L1
alone, no critic). Each run then translates the held-out 20% (the test split, never seen). The
project's digit classifier (the ``digits-cnn-v1`` extractor, trained on real digits only) reads
every translation: "kept" is the share read as the source digit's class (the classifier's own
accuracy on the real test digits is the ceiling), "agrees" the share read as the classifier reads
the real target. FID is computed on that classifier's features between the translations and the
real intact test digits (lower: closer to real digits' statistics). The damaged inputs themselves
are scored too, as the do-nothing baseline.

    python benchmarks/pix2pix.py --steps 2000 --seeds 0 [--data sigma=3 erase=0]
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


def score(images, test, classifier) -> dict:
    import torch

    from gancore.metrics.stats import frechet_of_features

    with torch.no_grad():
        feats, logits = classifier.run(images)
        real_feats, real_logits = classifier.run(test.x_b)
    return {"digit_kept": float((logits.argmax(1) == test.y).float().mean()),
            "agrees_with_target": float((logits.argmax(1) == real_logits.argmax(1)).float().mean()),
            "fid_digits_cnn": float(frechet_of_features(feats.numpy(), real_feats.numpy())),
            "l1_to_target": float((images - test.x_b).abs().mean())}


def train(out: Path, steps: int, seed: int, adversarial: bool, sets: list[str]) -> float:
    cmd = [sys.executable, "-m", "gancore", "run", "pix2pix", "--out", str(out),
           *[x for kv in sets for x in ("--set", f"data.{kv}")], "--set", f"train.steps={steps}",
           "--set", f"train.seed={seed}", "--set", f"variant.adversarial={str(adversarial).lower()}",
           "--set", "log.progress=false", "--set", f"log.checkpoint_every={steps}"]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE",
                    help="digits-restore settings for training and test data (e.g. sigma=3 erase=0)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "pix2pix.json")
    args = ap.parse_args()

    import torch

    from gancore.inference import load_model, translate_images
    from gancore.metrics.extractors import DigitClassifier
    from gancore.nets.unet import KeptDropout
    from gancore.app import load_plugins
    from gancore.translation.sources import DigitsRestore

    classifier = DigitClassifier()
    data = dict(kv.split("=", 1) for kv in args.data)
    test = DigitsRestore(DigitsRestore.Config.model_validate({**data, "split": "test"})).load()
    host = load_plugins()
    results = {"blurred_input": score(test.x, test, classifier),
               "real_sharp": score(test.x_b, test, classifier), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name, adversarial in (("pix2pix", True), ("l1-only", False)):
                run = Path(tmp) / f"{name}-{seed}"
                seconds = train(run, args.steps, seed, adversarial, args.data)
                model, _ = load_model(host, run)
                translated = translate_images(model, test.x, "a2b")
                row = {"model": name, "seed": seed, "steps": args.steps, "train_seconds": round(seconds, 1),
                       **score(translated, test, classifier)}
                results["runs"].append(row)
                print(json.dumps(row))
                kept = [m for m in model.nets.generator.modules() if isinstance(m, KeptDropout)]
                if kept:  # the same weights with the test-time noise switched off
                    for m in kept:
                        m.p = 0.0
                    row = {**row, "model": f"{name}, no dropout at test time",
                           **score(translate_images(model, test.x, "a2b"), test, classifier)}
                    results["runs"].append(row)
                    print(json.dumps(row))
    results["setup"] = {"steps": args.steps, "data": data, "test_images": len(test.x), "classifier": classifier.name,
                        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                        "torch": torch.__version__, "command": "python benchmarks/pix2pix.py " +
                        " ".join(sys.argv[1:])}
    print(json.dumps({k: results[k] for k in ("blurred_input", "real_sharp")}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
