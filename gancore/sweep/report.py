"""``gancore sweep report DIR``: the study as one self-contained HTML page, in ``gancore report``'s style."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

from gancore.errors import ConfigError
from gancore.files import write_text_atomic
from gancore.report import COLOURS, STYLE, _esc, _num, svg_frame, svg_plot
from gancore.sweep.space import assignment
from gancore.sweep.study import open_storage, optuna_module


def read_sweep(sweep_dir: Path) -> tuple[dict[str, Any], Any]:
    """(sweep.json, the study) of the sweep in ``sweep_dir``."""
    path = sweep_dir / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"{sweep_dir}: not a sweep folder (no sweep.json)")
    try:
        info = json.loads(path.read_text())
        storage, name = info["storage"], info["study"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a sweep.json gancore wrote ({type(exc).__name__}: {exc})") from None
    optuna = optuna_module()
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
    except KeyError:
        raise ConfigError(f"{path}: its storage {storage} holds no study {name!r}") from None
    return info, study


def _scatter(title: str, points: list[tuple[Any, float]], log: bool, y_label: str) -> str:
    """Objective against one parameter: numeric x on a linear or log axis, choices as evenly spaced labels."""
    pts = [(x, y) for x, y in points if math.isfinite(y)]
    if not pts:
        return ""
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x, _ in pts)
    labels: list[str] = []
    if numeric:
        xs = [math.log10(x) if log and x > 0 else float(x) for x, _ in pts]
    else:
        labels = sorted({json.dumps(x) for x, _ in pts})
        xs = [float(labels.index(json.dumps(x))) for x, _ in pts]
    ys = [y for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    width, height, left, top = 360, 240, 60, 24
    pw, ph = width - left - 12, height - top - 34
    pad = 0.05 * (x1 - x0)
    x0, x1 = x0 - pad, x1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [*svg_frame(title, width, height, left, top, pw, ph, y0, y1),
             f'<text x="{left - 4}" y="{top + ph / 2}" font-size="10" text-anchor="end">{_esc(y_label)}</text>']
    if numeric:
        lo, hi = (10 ** (x0 + pad), 10 ** (x1 - pad)) if log else (x0 + pad, x1 - pad)
        parts.append(f'<text x="{sx(x0 + pad):.1f}" y="{top + ph + 14}" font-size="10">{_num(lo)}</text>'
                     f'<text x="{sx(x1 - pad):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="end">'
                     f'{_num(hi)}{" (log)" if log else ""}</text>')
    else:
        for i, label in enumerate(labels):
            parts.append(f'<text x="{sx(i):.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle">'
                         f'{_esc(label)}</text>')
    for x, y in zip(xs, ys, strict=True):
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{COLOURS[0]}" fill-opacity="0.7"/>')
    parts.append("</svg>")
    return "".join(parts)


def _bars(title: str, values: dict[str, float]) -> str:
    width, row, left = 520, 20, 220
    height = 28 + row * len(values)
    top = max(values.values(), default=0.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_esc(title)}">',
             f'<text x="0" y="16" font-size="13" font-weight="bold">{_esc(title)}</text>']
    for i, (name, value) in enumerate(values.items()):
        y = 26 + row * i
        w = max(1.0, value / top * (width - left - 60))
        parts.append(f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end">{_esc(name)}</text>'
                     f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{COLOURS[2]}"/>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 12}" font-size="11">{value:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _importances(optuna: Any, study: Any) -> tuple[dict[str, float], str]:
    """fANOVA importances of the parameters over the completed trials, or why there are none."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return {}, "importances need at least two completed trials"
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as exc:
        return {}, f"no importances: {exc}"
    return dict(found), ""


def _note(trial: Any) -> str:
    attrs = trial.user_attrs
    notes = []
    if attrs.get("retry_of") is not None:
        notes.append(f"retry of trial {attrs['retry_of']}")
    if attrs.get("error"):
        notes.append(str(attrs["error"]))
    if attrs.get("pruned"):
        notes.append(str(attrs["pruned"]))
    return "; ".join(notes)


def build_sweep_report(sweep_dir: Path) -> str:
    optuna = optuna_module()
    info, study = read_sweep(sweep_dir)
    state = optuna.trial.TrialState
    trials = study.trials
    keys = sorted(info.get("space", {}))
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
    metric = info.get("metric", "objective")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>gancore sweep: {_esc(info.get('study'))}</title>", f"<style>{STYLE}</style></head><body>",
           f"<h1>sweep {_esc(info.get('study'))}: {_esc(info.get('variant'))} "
           f"<span class='muted'>{_esc(sweep_dir.resolve())}</span></h1>",
           f"<p>{_esc(info.get('direction'))} {_esc(metric)}, the mean over {info.get('seeds', 1)} seed(s); "
           f"{len(trials)} trials (" + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
           + f"); storage <code>{_esc(info.get('storage'))}</code>.</p>",
           "<h2>Space</h2><table><tr><th>key</th><th>space</th></tr>"
           + "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(info['space'][k])}</td></tr>" for k in keys) + "</table>"]
    complete = [t for t in trials if t.state == state.COMPLETE]
    out.append("<h2>Best configuration</h2>")
    if complete:
        best = study.best_trial
        spread = best.user_attrs.get("std")
        words = [*(["--config", info["config"]] if info.get("config") else []),
                 *(["--preset", info["preset"]] if info.get("preset") else []),
                 *(w for a in [*info.get("sets", []), *(assignment(k, v) for k, v in sorted(best.params.items()))]
                   for w in ("--set", a))]
        sets = " ".join(shlex.quote(w) for w in words)
        out.append(f"<p>trial {best.number}: {_esc(metric)} <b>{_num(best.value)}</b>"
                   + (f" ± {_num(spread)}" if spread else "") + f" (seeds: {_esc(best.user_attrs.get('values'))}); "
                   f"runs in <code>{_esc(best.user_attrs.get('dir'))}</code></p>"
                   f"<pre>gancore run {_esc(info.get('variant'))} {_esc(sets)}</pre>")
    else:
        out.append("<p class='muted'>no trial has completed yet</p>")
    out.append("<h2>Trials</h2><table><tr><th>#</th><th>state</th>" + "".join(f"<th>{_esc(k)}</th>" for k in keys)
               + "<th>objective</th><th>seeds' std</th><th>seconds</th><th>runs</th><th>note</th></tr>")
    for t in trials:
        cells = "".join(f"<td>{_esc(_num(t.params[k]) if isinstance(t.params.get(k), float) else t.params.get(k, ''))}"
                        "</td>" for k in keys)
        value = _num(t.value) if t.value is not None else ""
        spread = t.user_attrs.get("std")
        folder = t.user_attrs.get("dir")
        shown = Path(folder).relative_to(sweep_dir.resolve()) if folder and Path(folder).is_relative_to(
            sweep_dir.resolve()) else folder
        out.append(f"<tr><td>{t.number}</td><td>{t.state.name.lower()}</td>{cells}<td>{value}</td>"
                   f"<td>{_num(spread) if spread is not None else ''}</td><td>{t.user_attrs.get('seconds', '')}</td>"
                   f"<td>{_esc(shown or '')}</td><td class='muted'>{_esc(_note(t))}</td></tr>")
    out.append("</table>")
    if complete:
        out.append("<h2>Objective against each parameter</h2><div class='plots'>")
        for k in keys:
            log = str(info["space"][k]).startswith("loguniform")
            out.append(_scatter(k, [(t.params[k], t.value) for t in complete if k in t.params], log, metric))
        out.append("</div><h2>Optimisation history</h2><div class='plots'>")
        maximize = info.get("direction") == "maximize"
        best_so_far, running = [], None
        for t in complete:
            running = t.value if running is None else (max if maximize else min)(running, t.value)
            best_so_far.append((float(t.number), running))
        out.append(svg_plot(f"{metric} by trial", {"trial": [(float(t.number), t.value) for t in complete],
                                                    "best so far": best_so_far}, x_label="trial"))
        out.append("</div>")
    importances, why = _importances(optuna, study)
    out.append("<h2>Parameter importances</h2>")
    out.append(_bars("fANOVA importance", importances) if importances else f"<p class='muted'>{_esc(why)}</p>")
    out.append("</body></html>")
    return "\n".join(out)


def write_sweep_report(sweep_dir: Path, out: Path | None = None) -> Path:
    """Write ``DIR/report.html`` (or ``out``) atomically; returns its path."""
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir}: no such sweep folder")
    path = out or sweep_dir / "report.html"
    write_text_atomic(build_sweep_report(sweep_dir), path)
    return path
