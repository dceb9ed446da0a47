"""``gancore report``: one self-contained HTML page per run.

Everything is inline (SVG plots, PNG grids as data URIs, no scripts, no external fonts or
styles), so the page opens offline, can be mailed or attached, and shows the same thing
everywhere. Sections: loss curves, evaluation curves, evaluation results with provenance, the
sample grids over time, the resolved config, the checkpoints.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from gancore.errors import ConfigError
from gancore.files import write_text_atomic
from gancore.kernel.checkpoint import list_checkpoints

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
MAX_GRIDS = 16

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 0.2em 0.8em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; } pre { background: #f4f4f4; padding: 1em; overflow-x: auto; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .grids { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; text-align: center; }
img.grid { width: 240px; image-rendering: pixelated; border: 1px solid #ddd; }
.muted { color: #777; }
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _num(v: float) -> str:
    return f"{v:.4g}"


def svg_frame(title: str, width: int, height: int, left: int, top: int, pw: float, ph: float, y0: float,
              y1: float) -> list[str]:
    """The opening of a plot's SVG: the element, the title, the plot area's frame and the y range."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="{_esc(title)}">',
            f'<text x="{left}" y="16" font-size="13" font-weight="bold">{_esc(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
            f'<text x="{left - 4}" y="{top + 10}" font-size="10" text-anchor="end">{_num(y1)}</text>',
            f'<text x="{left - 4}" y="{top + ph}" font-size="10" text-anchor="end">{_num(y0)}</text>']


def svg_plot(title: str, series: dict[str, list[tuple[float, float]]], width: int = 520, height: int = 260,
             x_label: str = "step") -> str:
    """A line plot as inline SVG: one polyline per series, axes with their ranges, a legend."""
    pts = [(x, y) for s in series.values() for x, y in s if math.isfinite(y)]
    if not pts:
        return ""
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    left, right, top = 60, 10, 24
    pw, ph = width - left - right, height - top - 30  # the plot area; the legend goes below it
    height = top + ph + 30 + 16 * len(series)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [*svg_frame(title, width, height, left, top, pw, ph, y0, y1),
             f'<text x="{left}" y="{top + ph + 14}" font-size="10">{_num(x0)}</text>',
             f'<text x="{left + pw}" y="{top + ph + 14}" font-size="10" text-anchor="end">{_esc(x_label)} '
             f'{_num(x1)}</text>']
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points if math.isfinite(y))
        if len(points) == 1:
            x, y = points[0]
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        else:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        ly = top + ph + 30 + 16 * i
        parts.append(f'<rect x="{left}" y="{ly - 9}" width="12" height="3" fill="{colour}"/>'
                     f'<text x="{left + 18}" y="{ly - 4}" font-size="11">{_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _read_metrics(path: Path, skipped: list[str]) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; a line that is not a JSON object with an integer ``step`` (a torn
    write, an edit, bytes that are not UTF-8) is left out and listed in ``skipped``, as resume drops it."""
    if not path.is_file():
        return []
    records, bad = [], []
    text = path.read_bytes().decode("utf-8", errors="replace")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError, ValueError):
            record = None
        step = record.get("step") if isinstance(record, dict) else None
        if not isinstance(step, int) or isinstance(step, bool) or "\ufffd" in line:
            bad.append(n)
            continue
        records.append(record)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        skipped.append(f"{path}: {len(bad)} line(s) that are not a JSON record with an integer step (line {shown})")
    return records


def _curves(records: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """Plots keyed by group: ``critic``, ``generator``, ``eval/<metric>``, ``speed``."""
    plots: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        step = r.get("step")
        for key, value in r.items():
            if key == "step" or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if key == "it_per_s":
                group, name = "speed (iterations/s)", key
            elif key.startswith("eval/"):
                parts = key.split("/", 2)
                metric, name = parts[1], parts[-1]
                group = f"eval: {metric}"
            else:
                group, _, name = key.partition("/")
                name = name or key
            plots[group][name].append((float(step), float(value)))
    return plots


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def build_report(run_dir: Path) -> str:
    """The report page for ``run_dir`` as one HTML string."""
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.json)")
    try:
        config = json.loads(config_path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise ConfigError(f"{config_path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: expected a JSON object (the run's resolved config), got "
                          f"{type(config).__name__}")
    skipped: list[str] = []
    records = _read_metrics(run_dir / "metrics.jsonl", skipped)
    variant, data = _section_name(config, "variant"), _section_name(config, "data")
    last = max((r["step"] for r in records), default=0)
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>gancore report: {_esc(run_dir.name)}</title>", f"<style>{STYLE}</style></head><body>",
           f"<h1>{_esc(variant)} on {_esc(data)} <span class='muted'>{_esc(run_dir.resolve())}</span></h1>",
           f"<p>{last} of {_esc(train.get('steps', '?'))} steps logged; "
           f"{len(list_checkpoints(run_dir / 'checkpoints'))} checkpoints.</p>"]

    plots = _curves(records)
    out.append("<h2 id='losses'>Loss curves</h2>")
    loss_plots = [svg_plot(g, dict(s)) for g, s in plots.items() if not g.startswith("eval")]
    out.append("<div class='plots'>" + "".join(loss_plots) + "</div>" if loss_plots
               else "<p class='muted'>No metrics logged yet.</p>")
    eval_plots = [svg_plot(g, dict(s)) for g, s in plots.items() if g.startswith("eval")]
    out.append("<h2 id='metrics'>Metric curves</h2>")
    out.append("<div class='plots'>" + "".join(eval_plots) + "</div>" if eval_plots
               else "<p class='muted'>No evaluations during training (set <code>eval.every</code>).</p>")

    out.append("<h2 id='evaluations'>Evaluation results</h2>")
    out.append(_eval_table(run_dir / "eval", skipped))

    out.append("<h2 id='samples'>Samples over time</h2>")
    grids = sorted((run_dir / "samples").glob("step_*.png")) if (run_dir / "samples").is_dir() else []
    if len(grids) > MAX_GRIDS:  # evenly spaced, always with the first and the last
        idx = sorted({round(i * (len(grids) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)})
        grids = [grids[i] for i in idx]
    if grids:
        figs = [f"<figure><img class='grid' alt='samples at {_esc(p.stem)}' src='{_img(p)}'>"
                f"<figcaption>{_esc(p.stem.replace('_', ' '))}</figcaption></figure>" for p in grids]
        out.append("<div class='grids'>" + "".join(figs) + "</div>")
    else:
        out.append("<p class='muted'>No sample grids.</p>")

    out.append("<h2 id='checkpoints'>Checkpoints</h2>")
    ckpts = list_checkpoints(run_dir / "checkpoints")
    if ckpts:
        rows = "".join(f"<tr><td>{step}</td><td>{_esc(p.name)}</td><td>{os.path.getsize(p) / 1e6:.2f} MB</td></tr>"
                       for step, p in ckpts)
        out.append(f"<table><tr><th>step</th><th>file</th><th>size</th></tr>{rows}</table>")
    else:
        out.append("<p class='muted'>No checkpoints.</p>")

    if skipped:
        out.append("<h2 id='skipped'>Left out</h2><ul>" + "".join(f"<li>{_esc(x)}</li>" for x in skipped) + "</ul>")
    out.append("<h2 id='config'>Resolved config</h2>")
    out.append(f"<pre>{_esc(json.dumps(config, indent=2))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def _section_name(config: dict[str, Any], section: str) -> str:
    value = config.get(section)
    name = value.get("name", "?") if isinstance(value, dict) else value
    return str(name) if isinstance(name, str) else "?"


def _eval_row(path: Path) -> str | None:
    """One evaluation's table row, or None for a file that is not an evaluation gancore wrote."""
    try:
        result = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError, OSError):
        return None
    if not isinstance(result, dict) or not isinstance(result.get("values"), dict):
        return None
    values = ", ".join(f"{k} = {_num(v) if isinstance(v, float) else v}" for k, v in result["values"].items())
    prov = result.get("provenance") if isinstance(result.get("provenance"), dict) else {}
    how = ", ".join(f"{k}: {prov[k]}" for k in ("extractor", "extractor_sha256", "n_samples", "n_real",
                                                 "real_split", "input_image_size", "resize_filter",
                                                 "classifier", "generator", "gancore") if k in prov)
    how = re.sub(r"([0-9a-f]{12})[0-9a-f]{52}", r"\1…", how)
    return (f"<tr><td>{_esc(result.get('metric', path.stem))}</td><td>{_esc(result.get('step', '?'))}</td>"
            f"<td>{_esc(values)}</td><td class='muted'>{_esc(how)}</td></tr>")


def _eval_table(folder: Path, skipped: list[str]) -> str:
    files = sorted(p for p in folder.glob("*_step_*.json") if p.is_file()) if folder.is_dir() else []
    rows = []
    for path in files:
        row = _eval_row(path)
        if row is None:
            skipped.append(f"{path}: not an evaluation result (a JSON object with its values)")
        else:
            rows.append(row)
    if not rows:
        return "<p class='muted'>No evaluations (run <code>gancore eval RUN</code>).</p>"
    return ("<table><tr><th>metric</th><th>step</th><th>values</th><th>how it was computed</th></tr>"
            + "".join(rows) + "</table>")


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) atomically; returns its path."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    page = build_report(run_dir)
    path = out or run_dir / "report.html"
    write_text_atomic(page, path)
    return path
