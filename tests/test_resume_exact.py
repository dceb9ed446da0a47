"""Resume continues exactly or says why not (issue 29, item 5): every optimizer, grad-scaler and EMA tensor
is required, of its parameter's dtype and shape (scalars included) and finite; a checkpoint with NaN weights
or statistics is never "good". A checkpoint that fails is named in one line and skipped for the newest good
one; with none left the resume is refused. The run lock covers where ``checkpoints/`` really is."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.errors import CheckpointError, ConfigError
from gancore.kernel import Trainer
from gancore.testing import SMALL, make_config, train

HOST = load_plugins()
# fp16 (one GradScaler per player, on the CPU too) and an EMA: every part a resume must restore
TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4, "log.checkpoint_every": 2,
        "train.precision": "fp16", "train.ema": 0.9}
LATEST = "step_0000004.safetensors"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exact") / "run"
    train(HOST, make_config(HOST, "dcgan", {**TINY, "train.steps": 4}), out)
    return out


Edit = Callable[[dict[str, torch.Tensor], dict[str, str]], None]


def first(tensors: dict[str, torch.Tensor], prefix: str, suffix: str) -> str:
    return next(k for k in sorted(tensors) if k.startswith(prefix) and k.endswith(suffix))


def drop(prefix: str, suffix: str = "") -> Edit:
    def edit(t, m):
        for key in [k for k in t if k.startswith(prefix) and k.endswith(suffix)]:
            del t[key]
    return edit


def replace(prefix: str, suffix: str, make: Callable[[torch.Tensor], torch.Tensor]) -> Edit:
    def edit(t, m):
        key = first(t, prefix, suffix)
        t[key] = make(t[key])
    return edit


def scaler(**values) -> Edit:
    def edit(t, m):
        state = json.loads(m["scaler.critic"])
        state.update(values)
        m["scaler.critic"] = json.dumps(state)
    return edit


def damaged(run: Path, where: Path, edit: Edit) -> Path:
    shutil.copytree(run, where)
    path = where / "checkpoints" / LATEST
    with safe_open(str(path), "pt") as fh:
        tensors, meta = {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())  # noqa: SIM118
    edit(tensors, meta)
    save_file(tensors, str(path), metadata=meta)
    return where


CASES = {
    "no optimizer tensors": (drop("optim.critic."), r"tensor 'optim\.critic\.0\.\w+' is missing"),
    "one moment missing": (drop("optim.generator.0.exp_avg_sq"), "'optim.generator.0.exp_avg_sq' is missing"),
    "a moment of another dtype": (replace("optim.critic.", "exp_avg", lambda v: v.double()),
                                  r"is \[.*\] torch.float64, expected \[.*\] torch.float32"),
    "a moment reduced to a scalar": (replace("optim.critic.", "exp_avg", lambda v: v.flatten()[0].clone()),
                                     r"exp_avg' is \[\] torch.float32, expected \["),
    "a step of another shape": (replace("optim.critic.", ".step", lambda v: torch.zeros(3)),
                                r"step' is \[3\] torch.float32, expected \[\]"),
    "a negative second moment": (replace("optim.critic.", "exp_avg_sq", lambda v: -torch.ones_like(v)),
                                 "holds negative values"),
    "a NaN moment": (replace("optim.generator.", "exp_avg", lambda v: torch.full_like(v, float("nan"))),
                     "exp_avg' holds non-finite values"),
    "NaN critic weights": (replace("critic.", "weight", lambda v: torch.full_like(v, float("nan"))),
                           r"tensor 'critic\.[\w.]+' holds non-finite values"),
    "a NaN BatchNorm statistic": (replace("generator.", "running_var", lambda v: v.index_fill(0, torch.tensor([0]),
                                                                                              float("inf"))),
                                  r"'generator\.[\w.]+running_var' holds non-finite"),
    "no EMA tensors": (drop("ema."), r"no 'ema\.\*' tensors, but the run keeps an EMA of 'generator'"),
    "a NaN scale": (scaler(scale=float("nan")), r"scaler\.critic: 'scale' must be a number within"),
    "a scale of 1e300": (scaler(scale=1e300), r"'scale' must be a number within .* found 1e\+300"),
    "a scale that is text": (scaler(scale="big"), r"'scale' must be a number"),
    "a scaler without its state": (lambda t, m: m.update({"scaler.critic": "{}"}), "'scale' must be a number"),
    "a growth tracker past its interval": (scaler(_growth_tracker=10**6), "'_growth_tracker' must be a whole number"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_checkpoint_that_cannot_continue_exactly_is_skipped_then_refused(run, tmp_path, case):
    edit, match = CASES[case]
    where = damaged(run, tmp_path / "run", edit)
    lines: list[str] = []
    cfg = make_config(HOST, "dcgan", {**TINY, "train.steps": 6})
    trainer = Trainer(HOST, cfg, where, resume=True, echo=lines.append)
    notice = [line for line in lines if line.startswith("resume:")]
    assert trainer.step == 2 and len(notice) == 1 and re.search(match, notice[0]), lines
    assert LATEST in notice[0] and "step_0000002" in notice[0]
    trainer.directory.release()
    (where / "checkpoints" / "step_0000002.safetensors").unlink()
    with pytest.raises((CheckpointError, ConfigError), match=match) as info:
        Trainer(HOST, cfg, where, resume=True, echo=lines.append)
    assert "\n" not in str(info.value)


def test_the_cli_refuses_a_run_whose_only_checkpoint_is_nan_in_one_line(run, tmp_path):
    where = damaged(run, tmp_path / "run", CASES["NaN critic weights"][0])
    (where / "checkpoints" / "step_0000002.safetensors").unlink()
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=6"])
    assert result.exit_code == 2 and "holds non-finite values" in result.output and LATEST in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_an_untouched_checkpoint_still_resumes_bitwise(run, tmp_path):
    """The checks refuse damage only: the same run resumed from step 2 ends where the straight run ended."""
    where = tmp_path / "run"
    shutil.copytree(run, where)
    (where / "checkpoints" / LATEST).unlink()
    trainer = Trainer(HOST, make_config(HOST, "dcgan", {**TINY, "train.steps": 4}), where, resume=True,
                      echo=lambda _line: None)
    assert trainer.step == 2
    trainer.train()
    with safe_open(str(run / "checkpoints" / LATEST), "pt") as a, \
            safe_open(str(where / "checkpoints" / LATEST), "pt") as b:
        for key in a.keys():  # noqa: SIM118
            if key.startswith(("generator.", "critic.", "ema.", "optim.")):
                assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key


def test_two_runs_sharing_one_checkpoints_folder_are_held_by_one_lock(run, tmp_path):
    """``checkpoints/`` symlinked to one folder from two run directories: while one trains (a real second
    process), the other is refused naming the real folder; the lock covers where the checkpoints really are."""
    shared = tmp_path / "shared"
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(run, a)
    shutil.move(str(a / "checkpoints"), shared)
    (a / "checkpoints").symlink_to(shared)
    shutil.copytree(a, b, symlinks=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "gancore", "run", "dcgan", "--out", str(a), "--resume",
                              "--set", "train.steps=100000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env)
    try:
        deadline = time.monotonic() + 120
        while not (shared / ".lock").exists() or (shared / ".lock").read_text().strip() != str(first.pid):
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "-m", "gancore", "run", "dcgan", "--out", str(b), "--resume",
                                 "--set", "train.steps=8"], capture_output=True, text=True, timeout=300, env=env)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"{shared.resolve()} (the checkpoints/ folder of {b}) is in use by another gancore process " \
               f"(pid {first.pid})" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    lines: list[str] = []
    trainer = Trainer(HOST, make_config(HOST, "dcgan", {**TINY, "train.steps": 10**5}), b, resume=True,
                      echo=lines.append)  # free once the other has ended
    assert trainer.step >= 4
    trainer.directory.release()
