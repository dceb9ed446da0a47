"""The quality benchmark: train every installed variant on its default built-in data, evaluate it
with gancore's metrics, and print the numbers next to the targets of the variant issues.

    python benchmarks/quality/run.py                       # every installed variant, default budgets
    python benchmarks/quality/run.py --only dcgan cgan     # some of them (their rows of the
                                                           # results file are replaced, the rest kept)
    python benchmarks/quality/run.py --set wgan:train.steps=300   # a smaller budget for one entry

Each entry is ``gancore run VARIANT`` with its defaults (plus the entry's own settings), then
``gancore eval`` with 2,000 samples (the metrics' own sizes for translation: the held-out split).
Third-party variants get their task's default metrics and no targets. Results (values, targets,
provenance, training seconds, machine) go to ``benchmarks/results/quality.json``.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from mixtures import TOY  # noqa: E402

# (entry, variant, extra --set, metrics, targets: {value: (op, bound)}) from the variant issues.
ENTRIES = [
    ("dcgan", "dcgan", [], ["fid", "kid", "inception-score"], {}),
    ("wgan-gp", "wgan", ["variant.mode=gp"], ["fid", "kid", "inception-score"], {}),
    ("wgan-gp grid", "wgan", ["variant.mode=gp", "data.name=gaussian-grid"], ["modes"],
     {"modes": (">=", 25), "high_quality": (">=", 0.90)}),
    # WGAN-GP with toy settings (lambda 1, Adam 2e-3 decayed linearly to 0; see benchmarks/mixtures.py)
    ("wgan-gp grid toy", "wgan", ["variant.mode=gp", "data.name=gaussian-grid", "train.batch_size=256",
                                  "train.steps=6000", *TOY], ["modes"],
     {"modes": (">=", 25), "high_quality": (">=", 0.90)}),
    ("cgan", "cgan", [], ["label-accuracy", "tstr", "fid"],
     {"label_accuracy": (">=", 0.95), "tstr": (">=", 0.85)}),
    ("cyclegan invert", "cyclegan", ["data.b_style=invert"], ["preservation", "reconstruction", "fid"],
     {"preservation": (">=", 0.90)}),
    ("cyclegan rotate", "cyclegan", ["data.b_style=rotate"], ["preservation", "reconstruction", "fid"],
     {"preservation": (">=", 0.90)}),
    ("cyclegan thicken", "cyclegan", ["data.b_style=thicken"], ["preservation", "reconstruction", "fid"],
     {"preservation": (">=", 0.80)}),
    ("pix2pix", "pix2pix", [], ["preservation", "fid"], {"preservation": (">=", 0.97)}),
    ("pix2pix l1-only", "pix2pix", ["variant.adversarial=false"], ["preservation", "fid"], {}),
    ("infogan", "infogan", [], ["fid", "kid", "inception-score"], {}),  # code accuracy: benchmarks/infogan.py
    ("vae", "vae", [], ["fid", "kid", "inception-score"], {}),  # reconstructions: benchmarks/vae.py
    ("vaegan", "vaegan", [], ["fid", "kid", "inception-score"], {}),
    ("siamese", "siamese", [], ["fid", "kid", "inception-score"], {}),
    ("siamese invert", "siamese", ["variant.mode=translate", "data.b_style=invert"], ["preservation", "fid"],
     {"preservation": (">=", 0.85)}),
    ("siamese rotate", "siamese", ["variant.mode=translate", "data.b_style=rotate"], ["preservation", "fid"],
     {"preservation": (">=", 0.85)}),
]
SHOWN = ["fid", "kid", "inception_score", "label_accuracy", "tstr", "modes", "high_quality", "preservation",
         "reconstruction_l1_a"]
OPS = {">=": operator.ge, "<=": operator.le}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", help="Entries or variants to run (default: all installed).")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="ENTRY:KEY=VALUE",
                   help="A --set for one entry (or every entry of a variant), e.g. wgan-gp:train.steps=300.")
    p.add_argument("--n", type=int, default=2000, help="Samples per evaluation.")
    p.add_argument("--out", type=Path, default=HERE.parent / "results" / "quality.json")
    args = p.parse_args()

    from gancore.evaluation import evaluate
    from gancore.app import load_plugins

    host = load_plugins()
    installed = set(host.variants.names())
    entries = [e for e in ENTRIES if e[1] in installed]
    known = {e[1] for e in ENTRIES}
    entries += [(name, name, [], [], {}) for name in sorted(installed - known)]  # third-party: defaults
    if args.only:
        entries = [e for e in entries if e[0] in args.only or e[1] in args.only]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry, variant, extra, metrics, targets in entries:
            own = [s.split(":", 1)[1] for s in args.sets if s.split(":", 1)[0] in (entry, variant)]
            run = Path(tmp) / entry.replace(" ", "-")
            cmd = [sys.executable, "-m", "gancore", "run", variant, "--out", str(run), "--set", "log.progress=false",
                   *[a for s in [*extra, *own] for a in ("--set", s)]]
            print(f"== {entry}: {' '.join(cmd[3:])}", flush=True)
            started = time.perf_counter()
            subprocess.run(cmd, check=True)
            seconds = time.perf_counter() - started
            results, _ = evaluate(host, run, metrics, [], n=args.n, echo=lambda m: print(m, flush=True))
            values = {k: v for r in results for k, v in r["values"].items()}
            checks = {k: bool(OPS[op](values[k], bound)) for k, (op, bound) in targets.items() if k in values}
            row = {"entry": entry, "variant": variant, "settings": [*extra, *own], "step": results[0]["step"],
                   "train_seconds": round(seconds, 1), "values": values,
                   "targets": {k: f"{op} {bound}" for k, (op, bound) in targets.items()}, "met": checks,
                   "provenance": {r["metric"]: r["provenance"] for r in results}}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("entry", "step", "values", "met")}), flush=True)
    machine = f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} threads"
    print(f"\nquality benchmark on {machine}, {args.n} samples per evaluation")
    header = f"{'entry':<18} {'steps':>5} {'train s':>7}  " + " ".join(f"{k[:14]:>14}" for k in SHOWN) + "  targets"
    print(header)
    for r in rows:
        cells = []
        for k in SHOWN:
            v = r["values"].get(k)
            cell = "-" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))
            if k in r["met"]:
                cell += " ok" if r["met"][k] else " NO"
            cells.append(f"{cell:>14}")
        targets = ", ".join(f"{k} {t}" for k, t in r["targets"].items()) or "-"
        print(f"{r['entry']:<18} {r['step']:>5} {r['train_seconds']:>7.0f}  " + " ".join(cells) + f"  {targets}")
    if args.only and args.out.exists():  # a partial run replaces its own rows, keeps the others
        done = {r["entry"] for r in rows}
        old = json.loads(args.out.read_text())["rows"]
        order = [e[0] for e in ENTRIES]
        rows = sorted([r for r in old if r["entry"] not in done] + rows,
                      key=lambda r: order.index(r["entry"]) if r["entry"] in order else len(order))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine, "n": args.n, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
