"""One run per directory (issue 19): a real second process is refused while the first trains, a
--resume too; a killed run releases its lock and resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gancore.kernel.checkpoint import list_checkpoints

TINY = ["--set", "data.image_size=16", "--set", "train.batch_size=4", "--set", "variant.generator_width=4",
        "--set", "variant.critic_width=4", "--set", "log.progress=false", "--set", "log.sample_every=0"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def gancore(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gancore", *args], capture_output=True, text=True, timeout=300,
                          env=ENV)


def test_a_second_process_is_refused_and_a_killed_run_resumes(tmp_path: Path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "gancore", "run", "dcgan", "--out", str(out), *TINY,
                              "--set", "train.steps=100000", "--set", "log.checkpoint_every=5"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while not list_checkpoints(out / "checkpoints"):
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        for args in (["run", "dcgan", "--out", str(out), *TINY, "--set", "train.seed=2"],
                     ["run", "dcgan", "--out", str(out), "--resume"]):
            second = gancore(*args)
            assert second.returncode == 2, second.stderr[-2000:]
            assert f"in use by another gancore process (pid {first.pid})" in second.stderr
            assert "Traceback" not in second.stderr
        lines = (out / "metrics.jsonl").read_text().splitlines()
        steps = [json.loads(line)["step"] for line in lines if line.endswith("}")]
        assert steps == sorted(steps) and len(steps) == len(set(steps))  # one run's records only
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    latest = list_checkpoints(out / "checkpoints")[-1][0]
    resumed = gancore("run", "dcgan", "--out", str(out), "--resume", "--set", f"train.steps={latest + 2}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]  # the killed run's lock went with it


def test_a_run_that_fails_to_start_leaves_no_directory(tmp_path: Path):
    result = gancore("run", "dcgan", "--out", str(tmp_path / "never"), "--set", "data.name=image-folder",
                     "--set", f"data.path={tmp_path / 'missing'}")
    assert result.returncode == 2 and not (tmp_path / "never").exists()


def test_a_resume_removes_the_temporary_files_of_a_killed_write(tmp_path: Path):
    out = tmp_path / "run"
    assert gancore("run", "dcgan", "--out", str(out), *TINY, "--set", "train.steps=2").returncode == 0
    stale = [out / "checkpoints" / ".step_0000004.safetensors.tmp999999", out / ".metrics.jsonl.tmp999999"]
    for path in stale:
        path.write_bytes(b"half a file")
    assert gancore("run", "dcgan", "--out", str(out), "--resume", *TINY, "--set", "train.steps=4").returncode == 0
    assert not any(path.exists() for path in stale)


def test_a_run_killed_at_random_moments_always_resumes(tmp_path: Path):
    """SIGKILL at seeded random moments — during start-up, steps, metrics.jsonl appends and checkpoint
    writes (every 2 steps, logging every step) — and each time `--resume` (or a fresh start while no
    run exists yet) carries on; the end has one record per step and the last checkpoint."""
    import random

    out = tmp_path / "run"
    args = [*TINY, "--set", "train.steps=200", "--set", "log.checkpoint_every=2", "--set", "log.every=1"]
    rng = random.Random(7)
    reached = []
    for _ in range(4):
        resume = ["--resume"] if (out / "config.json").exists() else []
        proc = subprocess.Popen([sys.executable, "-m", "gancore", "run", "dcgan", "--out", str(out), *resume, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
        time.sleep(rng.uniform(2.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        found = list_checkpoints(out / "checkpoints")
        reached.append(found[-1][0] if found else 0)
    assert reached[-1] < 200, "every attempt finished before its kill: nothing was interrupted"
    resume = ["--resume"] if (out / "config.json").exists() else []
    final = gancore("run", "dcgan", "--out", str(out), *resume, *args)
    assert final.returncode == 0, final.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 201))
    assert list_checkpoints(out / "checkpoints")[-1][0] == 200
