"""InfoGAN's code over the course of a run: does the code-to-digit assignment settle, and can Q tell? (issue 31)

Trains ``gancore run infogan`` once per seed (its defaults plus ``--set``; one thread per run, two runs
at once) with a checkpoint every 250 steps, then reads every checkpoint as ``benchmarks/infogan.py``
does (1,000 samples, 100 per categorical code, Hungarian accuracy on the digits CNN and on the
logistic-regression judge), and computes, without labels, what Q makes of the 1,797 real digits:
the mutual information between image and Q's category (H of the mean reading minus the mean H of a
reading), the smallest share of the real digits Q's argmax gives one category, and the within-category
pixel inertia of the real digits grouped by that argmax. Those are the candidates for picking a run
without labels.

    python benchmarks/infogan_course.py --seeds 0 1 2 3 4 5 6 7 --out benchmarks/results/infogan_course_default.json
    python benchmarks/infogan_course.py --seeds 0 1 2 3 4 5 6 7 --set train.ema=0.999 --out ...
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "speed"))


def q_on_real(model, real, flat) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F

    critic = model.nets.critic.eval()
    with torch.no_grad():
        p = F.softmax(critic(real).code_logits.float(), 1)
    mean = p.mean(0)
    h_mean = float(-(mean * mean.clamp_min(1e-12).log()).sum())
    h_each = float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())
    arg = p.argmax(1).numpy()
    k = p.shape[1]
    shares = np.bincount(arg, minlength=k) / len(arg)
    inertia = sum(((flat[arg == c] - flat[arg == c].mean(0)) ** 2).sum() for c in range(k) if (arg == c).any())
    return {"q_mutual_information": h_mean - h_each, "q_smallest_share": float(shares.min()),
            "q_inertia": float(inertia / len(arg))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--every", type=int, default=250, help="steps between the checkpoints read")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()

    from digit_judge import fit_judge
    from infogan import categorical_accuracy, train
    from peer import cpu

    from gancore.app import load_plugins
    from gancore.data.digits import Digits
    from gancore.inference import load_model
    from gancore.metrics.extractors import DigitClassifier

    sets = ["train.threads=1", f"log.checkpoint_every={args.every}", "log.keep_checkpoints=1000",
            "log.sample_every=0", *args.sets]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {seed: Path(tmp) / f"infogan-{seed}" for seed in args.seeds}
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda seed: train(runs[seed], None, seed, sets), args.seeds))
        classifier, (second, _) = DigitClassifier(), fit_judge()
        host = load_plugins()
        real = Digits(Digits.Config(image_size=16)).load().x  # the 1,797 digits as the runs trained on them
        flat = real.reshape(len(real), -1).numpy()
        rows = []
        for seed, run in runs.items():
            for ckpt in sorted((run / "checkpoints").glob("step_*.safetensors")):
                model, _ = load_model(host, ckpt)
                acc = categorical_accuracy(model, classifier, second)
                row = {"seed": seed, "step": int(ckpt.stem.split("_")[1]), "cnn": acc["hungarian_accuracy"],
                       "logistic_regression": acc["second_judge"]["hungarian_accuracy"],
                       **q_on_real(model, real, flat)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps({"machine": cpu(), "command": " ".join(sys.argv), "sets": args.sets,
                                    "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
