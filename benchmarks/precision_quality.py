"""Does quality hold at bf16? Each chosen entry of the quality benchmark (``quality/run.py``'s ENTRIES:
its variant, settings and metrics) trained with ``train.precision=fp32`` and ``=bf16`` on the same
seeds, then evaluated alike (its metrics, ``--n`` samples); per metric, the bf16 runs against the
run-to-run spread of the fp32 ones (issue 30: within the spread of 3 seeds).

    python benchmarks/precision_quality.py --only dcgan cgan --seeds 0 1 2 --jobs 2 \\
        --out benchmarks/results/precision_quality.json

Runs ``--jobs`` trainings at once, each with ``train.threads=1``; the evaluation runs after all of
them, one at a time. "within" is True when the bf16 mean lies inside [min, max] of the fp32 seeds
widened by half their range on each side (with 3 seeds the range is the spread that is known).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "speed"))
from peer import cpu  # noqa: E402
from quality.run import ENTRIES  # noqa: E402


def train(run: Path, variant: str, sets: list[str]) -> float:
    cmd = [sys.executable, "-m", "gancore", "run", variant, "--out", str(run), "--set", "log.progress=false",
           "--set", "train.threads=1", *[a for s in sets for a in ("--set", s)]]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", default=["dcgan"], help="quality/run.py entries (default: dcgan)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--n", type=int, default=2000, help="samples per evaluation")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a --set for every run")
    p.add_argument("--runs", type=Path, help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    from gancore.app import load_plugins
    from gancore.evaluation import evaluate

    host = load_plugins()
    entries = [e for e in ENTRIES if e[0] in args.only]
    if len(entries) != len(args.only):
        p.error(f"--only: known entries are {', '.join(e[0] for e in ENTRIES)}")
    rows = []
    with tempfile.TemporaryDirectory() if args.runs is None else contextlib.nullcontext(str(args.runs)) as tmp:
        jobs = [(entry, variant, [*extra, *args.sets, f"train.seed={seed}", f"train.precision={prec}"], metrics,
                 Path(tmp) / f"{entry.replace(' ', '-')}-{prec}-{seed}", prec, seed)
                for entry, variant, extra, metrics, _ in entries for seed in args.seeds for prec in args.precisions]
        with ThreadPoolExecutor(args.jobs) as pool:
            seconds = list(pool.map(lambda j: train(j[4], j[1], j[2]), jobs))
        for (entry, _variant, _sets, metrics, run, prec, seed), took in zip(jobs, seconds, strict=True):
            results, _ = evaluate(host, run, metrics, [], n=args.n, echo=lambda m: None)
            values = {k: v for r in results for k, v in r["values"].items() if isinstance(v, (int, float))}
            rows.append({"entry": entry, "precision": prec, "seed": seed, "train_seconds": round(took, 1),
                         "values": values})
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for entry, *_ in entries:
        mine = [r for r in rows if r["entry"] == entry]
        keys = sorted(k for k in set.intersection(*(set(r["values"]) for r in mine))
                      if not k.endswith(("_std", "_real")))  # a value's own spread, the real data's score
        per = {}
        for key in keys:
            by = {prec: [r["values"][key] for r in mine if r["precision"] == prec] for prec in args.precisions}
            ref = by["fp32"]
            lo, hi = min(ref), max(ref)
            pad = (hi - lo) / 2
            per[key] = {prec: {"seeds": vals, "mean": statistics.fmean(vals)} for prec, vals in by.items()}
            for prec in args.precisions:
                if prec != "fp32":
                    per[key][prec]["within"] = lo - pad <= per[key][prec]["mean"] <= hi + pad
        summary[entry] = per
        for key, v in per.items():
            print(entry, key, {prec: (round(x["mean"], 4), [round(s, 4) for s in x["seeds"]], x.get("within"))
                               for prec, x in v.items()})
    out = {"machine": cpu(), "n": args.n, "seeds": args.seeds, "rows": rows, "summary": summary,
           "command": " ".join(sys.argv)}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
