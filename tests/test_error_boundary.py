"""The CLI's error boundary: the file system's errors are one line (the path and a plain reason), a
failed checkpoint write (a real file size limit) leaves the last good checkpoint and nothing
half-written, and --debug / GANCORE_DEBUG=1 bring the traceback back."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gancore.cli import cli

TINY = ["--set", "data.image_size=16", "--set", "train.batch_size=4", "--set", "variant.generator_width=4",
        "--set", "variant.critic_width=4", "--set", "log.progress=false", "--set", "log.sample_every=0",
        "--set", "log.checkpoint_every=2"]


def gancore(*args: str, fsize: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "gancore", *args], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("boundary") / "run"
    proc = gancore("run", "dcgan", "--out", str(out), *TINY, "--set", "train.steps=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gancore: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_disk_full_during_a_checkpoint_keeps_the_last_good_one_and_resume_continues(run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(run, out)
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    proc = gancore("run", "dcgan", "--out", str(out), "--resume", *TINY, "--set", "train.steps=4", fsize=4000)
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert "cannot write" in line and "step_0000004.safetensors" in line and "file size limit" in line
    assert "Last good checkpoint" in line and "step_0000002.safetensors" in line
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before  # no temporary file left
    again = gancore("run", "dcgan", "--out", str(out), "--resume", *TINY, "--set", "train.steps=4")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "checkpoints" / "step_0000004.safetensors").is_file()


def test_an_output_under_a_file_is_one_line(run, tmp_path):
    (tmp_path / "a-file").write_text("x")
    proc = gancore("sample", str(run), "--n", "2", "--out", str(tmp_path / "a-file" / "grid.png"))
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "a-file" in line and "not a folder" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_a_read_only_output_folder_is_one_line(run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = gancore("sample", str(run), "--n", "2", "--out", str(locked / "grid.png"))
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2 and "permission denied" in one_line_error(proc)


def test_debug_shows_the_traceback(run, tmp_path):
    (tmp_path / "a-file").write_text("x")
    target = str(tmp_path / "a-file" / "grid.png")
    for args, env in ((["--debug"], None), ([], {"GANCORE_DEBUG": "1"})):
        proc = gancore(*args, "sample", str(run), "--n", "2", "--out", target, env=env)
        assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_gancore_errors_also_have_their_traceback_under_debug():
    result = CliRunner().invoke(cli, ["--debug", "run", "no-such-variant"])
    assert result.exit_code != 0 and result.exception is not None and not isinstance(result.exception, SystemExit)
    plain = CliRunner().invoke(cli, ["run", "no-such-variant"])
    assert plain.exit_code == 2 and "gancore: error:" in plain.output


@pytest.fixture(scope="module")
def translator(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("p2p") / "run"
    result = CliRunner().invoke(cli, ["run", "pix2pix", "--out", str(out), *TINY, "--set", "train.steps=1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "foo"], "--device: expected auto, cpu, cuda, cuda:N or mps, got 'foo'"),
    (["--device", "meta"], "got 'meta'"),
    (["--seed", str(10**23)], "Invalid value for '--seed'"),
    (["--label", str(10**23)], "Invalid value for '--label'"),
    (["--code", str(10**23)], "Invalid value for '--code'"),
])
def test_sample_options_at_the_boundary(run, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["sample", str(run), "--n", "2", "--out", str(tmp_path / "x.png"), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_translate_inputs_and_outputs_at_the_boundary(translator, tmp_path):
    import numpy as np
    from PIL import Image

    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    np.save(tmp_path / "none.npy", np.zeros((0, 1, 16, 16), dtype=np.float32))
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(tmp_path / "one.png")
    cases = [(["--input", str(tmp_path / "strings.npy"), "--out", str(tmp_path / "y.npy")], "expected numbers"),
             (["--input", str(tmp_path / "none.npy"), "--out", str(tmp_path / "y.npy")], "holds no images"),
             (["--input", str(tmp_path / "one.png"), "--out", str(tmp_path / "y.txt")], "images in, images out"),
             (["--input", str(tmp_path / "one.png"), "--out", str(tmp_path / "noext")], "images in, images out")]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["translate", str(translator), *args])
        assert result.exit_code == 2 and message in result.output, result.output


def test_an_eval_metric_for_another_task_fails_before_training(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(out), *TINY, "--set", "train.steps=2",
                                      "--set", 'eval.metrics=[{"name": "preservation"}]', "--set", "eval.every=1"])
    assert result.exit_code == 2 and "eval.metrics.0: metric 'preservation' applies to translate runs" in result.output
    assert not out.exists()  # nothing left that neither a fresh run nor --resume would accept


def test_a_decompression_bomb_is_one_line_and_the_limit_can_be_raised(translator, tmp_path):
    import numpy as np
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).resize((3000, 3000)).save(big)  # 9 MP, tiny on disk
    args = ["translate", str(translator), "--input", str(big), "--out", str(tmp_path / "out.png")]
    proc = gancore(*args, env={"GANCORE_MAX_IMAGE_PIXELS": "1000000"})
    assert proc.returncode == 2 and "too large to decode safely" in one_line_error(proc)
    assert "GANCORE_MAX_IMAGE_PIXELS" in proc.stderr
    assert gancore(*args, env={"GANCORE_MAX_IMAGE_PIXELS": "20000000"}).returncode == 0
    bad = gancore(*args, env={"GANCORE_MAX_IMAGE_PIXELS": "lots"})
    assert bad.returncode == 2 and "GANCORE_MAX_IMAGE_PIXELS: expected a positive number" in one_line_error(bad)


@pytest.mark.parametrize(("command", "target"), [
    (["sample", "{run}", "--n", "64", "--out", "{out}/s.png"], "s.png"),
    (["sample", "{run}", "--n", "64", "--out", "{out}/s.npy"], "s.npy"),
    (["sample", "{run}", "--n", "64", "--out", "{out}/s.safetensors"], "s.safetensors"),
    (["report", "{run}", "--out", "{out}/r.html"], "r.html"),
])
def test_a_full_disk_leaves_no_output_and_no_temporary_file_and_names_the_target(run, tmp_path, command, target):
    out = tmp_path / "out"
    out.mkdir()
    args = [a.format(run=run, out=out) for a in command]
    proc = gancore(*args, fsize=2000, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode != 0
    line = one_line_error(proc)
    assert str(out / target) in line and ("file size limit" in line or "disk is full" in line), line
    assert list(out.iterdir()) == []  # neither the target nor a temporary file


def test_a_full_disk_during_eval_leaves_no_temporary_file(run, tmp_path):
    import shutil

    where = tmp_path / "run"
    shutil.copytree(run, where)
    first = gancore("eval", str(where), "--metric", "kid", "--n", "64")  # fills the extractor and feature caches
    assert first.returncode == 0, first.stderr[-2000:]
    before = sorted(p.name for p in (where / "eval").iterdir())
    for p in (where / "eval").iterdir():
        p.unlink()
    proc = gancore("eval", str(where), "--metric", "kid", "--n", "64", fsize=40,
                   env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode != 0
    line = one_line_error(proc)
    assert f"cannot write {where / 'eval' / before[0]}" in line and "file size limit" in line, line
    assert list((where / "eval").iterdir()) == []  # neither the result nor a temporary file
