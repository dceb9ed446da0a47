"""Issue 29's readers: ``gancore report`` never trusts a run's files — what resume tolerates (torn or edited
metrics lines, a damaged evaluation file) the report leaves out and lists; a config.json it cannot read is
one line; any metrics.jsonl line (property) gives a report."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gancore.cli import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reader") / "run"
    result = CliRunner().invoke(cli, ["run", "wgan", "--out", str(out), "--set", "data.name=gaussian-grid", "--set",
                                      "train.steps=4", "--set", "train.batch_size=16", "--set", "variant.mlp_hidden=16",
                                      "--set", "log.every=1", "--set", "log.progress=false", "--set", "eval.every=4",
                                      "--set", 'eval.metrics=[{"name": "modes"}]'])
    assert result.exit_code == 0, result.output
    return out


def _copy(run, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


METRICS_DAMAGE = {
    "a list": b"[1, 2]\n",
    "not utf-8": b'{"step": 5, "critic/adv": 1.0, "x": "\xff\xfe"}\n',
    "a null step": b'{"step": null, "critic/adv": 1.0}\n',
    "a string step": b'{"step": "7", "critic/adv": 1.0}\n',
    "a boolean step": b'{"step": true, "critic/adv": 1.0}\n',
    "a torn line": b'{"step": 9, "critic/ad',
    "a number": b"42\n",
    "deep nesting": b"[" * 100000 + b"\n",
}


@pytest.mark.parametrize("damage", sorted(METRICS_DAMAGE))
def test_a_damaged_metrics_line_is_left_out_and_listed(run, tmp_path, damage):
    target = _copy(run, tmp_path)
    with (target / "metrics.jsonl").open("ab") as fh:
        fh.write(METRICS_DAMAGE[damage])
    result = CliRunner().invoke(cli, ["report", str(target)])
    assert result.exit_code == 0, result.output
    page = (target / "report.html").read_text()
    assert "Left out" in page and "1 line(s) that are not a JSON record with an integer step (line " in page
    assert "Loss curves" in page and "<svg" in page


def test_a_two_part_eval_key_and_a_damaged_evaluation_file_are_handled(run, tmp_path):
    target = _copy(run, tmp_path)
    with (target / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 4, "eval/fid": 12.5}) + "\n")
    (target / "eval" / "fid_step_0000004.json").write_text(json.dumps({"metric": "fid", "step": 4}))
    (target / "eval" / "kid_step_0000004.json").write_text("[]")
    (target / "eval" / "is_step_0000004.json").write_bytes(b"\xff\x00")
    result = CliRunner().invoke(cli, ["report", str(target)])
    assert result.exit_code == 0, result.output
    page = (target / "report.html").read_text()
    assert page.count("not an evaluation result") == 3
    assert "eval: fid" in page and "high_quality" in page  # the good evaluation is still shown


@pytest.mark.parametrize(("content", "message"), [
    (b"[1, 2]", "expected a JSON object (the run's resolved config), got list"),
    (b"\x00\xff\x89binary", "not valid JSON"),
    (b"{" * 100000, "not valid JSON"),
])
def test_a_config_json_it_cannot_read_is_one_line(run, tmp_path, content, message):
    target = _copy(run, tmp_path)
    (target / "config.json").write_bytes(content)
    result = CliRunner().invoke(cli, ["report", str(target)])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"gancore: error: {target / 'config.json'}: {message}") and "Traceback" not in result.output


def test_a_section_written_as_a_string_still_reports(run, tmp_path):
    target = _copy(run, tmp_path)
    config = json.loads((target / "config.json").read_text())
    config["variant"], config["train"] = "wgan", "oops"
    (target / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["report", str(target)])
    assert result.exit_code == 0, result.output
    assert "<h1>wgan on gaussian-grid" in (target / "report.html").read_text()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.binary(max_size=80))
def test_any_metrics_line_gives_a_report(run, tmp_path_factory, line):
    target = tmp_path_factory.mktemp("any") / "run"
    shutil.copytree(run, target)
    with (target / "metrics.jsonl").open("ab") as fh:
        fh.write(line + b"\n")
    result = CliRunner().invoke(cli, ["report", str(target)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["metrics.jsonl", ".lock", "config.json"])
def test_a_fifo_where_a_run_file_belongs_is_refused_at_once(run, tmp_path, name):
    import os
    import subprocess
    import sys
    from pathlib import Path

    target = _copy(run, tmp_path)
    (target / name).unlink()
    os.mkfifo(target / name)
    root = Path(__file__).resolve().parents[1]
    paths = [str(root), *(str(p) for p in sorted((root / "plugins").iterdir()) if p.is_dir())]
    done = subprocess.run([sys.executable, "-m", "gancore", "run", "wgan", "--out", str(target), "--resume",
                           "--set", "train.steps=6"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"gancore: error: {target / name}: is a pipe, device or socket, not a regular file; the run's "
        f"{'lock file' if name == '.lock' else name} must be a file (move it away)")
