"""``gancore sweep`` on real Optuna storage: SQLite and journal files, trials that are ordinary runs, two
sweep processes on one study, kill -9 mid-sweep and the same command again, the pruner stopping a real
run, the report, and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

optuna = pytest.importorskip("optuna")

from gancore.cli import cli  # noqa: E402
from gancore.sweep.space import parse_param  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = ["--set", "data.name=gaussian-grid", "--set", "train.steps=30", "--set", "train.batch_size=64",
        "--set", "train.n_critic=2", "--set", "log.every=10", "--set", "log.checkpoint_every=10",
        "--set", "variant.mlp_hidden=32", "--set", "variant.mlp_layers=2"]
SPACE = ["--param", "optim.generator.lr=loguniform(1e-5,1e-3)", "--param", "variant.mode=choice(gp,clip)"]


def _env() -> dict[str, str]:
    paths = [str(ROOT), *(str(p) for p in sorted((ROOT / "plugins").iterdir()) if p.is_dir())]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def _sweep(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gancore", "sweep", "wgan", *args], capture_output=True, text=True,
                          env=_env(), timeout=600)


def _study(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="gancore", storage=f"sqlite:///{out / 'study.db'}")


def test_a_sweep_trains_every_trial_as_an_ordinary_run_and_reports_it(tmp_path):
    out = tmp_path / "sw"
    done = _sweep("--out", str(out), *BASE, *SPACE, "--metric", "modes:high_quality", "--trials", "3",
                  "--seeds", "2", "--jobs", "2", "--pruner", "none", "--sampler", "random")
    assert done.returncode == 0, done.stderr
    assert "best: trial " in done.stderr
    study = _study(out)
    # two workers that ask at the same moment may make a 4th trial, which gives way (state FAIL, "surplus")
    trials = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len(trials) == 3 and study.direction == optuna.study.StudyDirection.MAXIMIZE
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        values = trial.user_attrs["values"]
        assert len(values) == 2 and trial.value == pytest.approx(sum(values) / 2)
        for seed in (0, 1):
            run = out / "trials" / f"{trial.number:04d}" / f"seed_{seed}"
            config = json.loads((run / "config.json").read_text())
            assert config["train"]["seed"] == seed
            assert config["optim"]["generator"]["lr"] == trial.params["optim.generator.lr"]
            assert config["variant"]["mode"] == trial.params["variant.mode"]
            assert (run / "checkpoints" / "step_0000030.safetensors").is_file()
            scored = json.loads((run / "eval" / "modes_step_0000030.json").read_text())
            assert scored["values"]["high_quality"] == values[seed]
    # a trial's run is an ordinary run: sample, eval and report work on it unchanged
    run = out / "trials" / "0000" / "seed_0"
    runner = CliRunner()
    sampled = runner.invoke(cli, ["sample", str(run), "--n", "16", "--out", str(tmp_path / "s.png")])
    assert sampled.exit_code == 0, sampled.output
    assert runner.invoke(cli, ["report", str(run)]).exit_code == 0
    reported = runner.invoke(cli, ["sweep", "report", str(out)])
    assert reported.exit_code == 0, reported.output
    page = (out / "report.html").read_text()
    best = study.best_trial
    assert f"trial {best.number}: modes:high_quality <b>" in page
    assert page.count("<tr><td>") >= 3 + 2  # the space's rows and every trial's
    assert "Objective against each parameter" in page and "Optimisation history" in page
    assert "--set data.name=gaussian-grid" in page  # the best run's whole command
    # the same command again: the study is complete, nothing trains
    again = _sweep("--out", str(out), *BASE, *SPACE, "--metric", "modes:high_quality", "--trials", "3",
                   "--seeds", "2", "--pruner", "none", "--sampler", "random")
    assert again.returncode == 0, again.stderr
    assert "3 of 3 trials" in again.stderr
    assert len(_study(out).trials) == len(study.trials)  # nothing new


def test_two_sweep_processes_share_one_study_in_a_journal_file(tmp_path):
    journal = tmp_path / "shared" / "study.log"
    journal.parent.mkdir()
    args = [*BASE, "--param", "optim.generator.lr=loguniform(1e-5,1e-3)", "--metric", "modes:high_quality",
            "--trials", "4", "--pruner", "none", "--storage", f"journal:{journal}", "--study", "shared"]
    procs = [subprocess.Popen([sys.executable, "-m", "gancore", "sweep", "wgan", "--out", str(tmp_path / f"m{i}"),
                               *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="shared", storage=storage)
    trained = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert len(trained) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trained)
    # both machines trained some of them, each under its own --out
    dirs = {Path(t.user_attrs["dir"]).parents[1].name for t in trained}
    assert dirs == {"m0", "m1"}


def test_kill_9_mid_sweep_then_the_same_command_continues_the_study(tmp_path):
    out = tmp_path / "sw"
    args = [*BASE, "--set", "train.steps=300", "--set", "log.checkpoint_every=20", "--param",
            "optim.generator.lr=loguniform(1e-5,1e-3)", "--metric", "modes:high_quality", "--trials", "2",
            "--pruner", "none", "--sampler", "random"]
    proc = subprocess.Popen([sys.executable, "-m", "gancore", "sweep", "wgan", "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), start_new_session=True)
    run = out / "trials" / "0000" / "seed_0"
    deadline = time.time() + 300
    while time.time() < deadline and not any(int(p.stem[5:]) >= 40 for p in (run / "checkpoints").glob("step_*")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, as a machine going down would
    proc.wait()
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*.safetensors"))
    assert kept and kept[-1] < "step_0000300.safetensors"
    study = _study(out)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]
    lr = study.trials[0].params["optim.generator.lr"]
    again = _sweep("--out", str(out), *args)
    assert again.returncode == 0, again.stderr
    assert "trial 0: its worker (pid " in again.stderr and "retrying it, resuming its runs" in again.stderr
    study = _study(out)
    states = [t.state for t in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE,
                      optuna.trial.TrialState.COMPLETE]
    retry = study.trials[1]
    assert retry.user_attrs["retry_of"] == 0 and retry.params["optim.generator.lr"] == lr
    assert retry.user_attrs["dir"] == str(out / "trials" / "0000")  # the same runs, resumed
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "generator/adv" in r]
    assert steps == list(range(10, 301, 10))  # resumed from its checkpoint: every logged step once
    assert (run / "checkpoints" / "step_0000300.safetensors").is_file()


def test_the_pruner_stops_a_real_run_which_keeps_its_checkpoints(tmp_path):
    from gancore.app import load_plugins
    from gancore.config import build_raw, resolve
    from gancore.kernel import Trainer
    from gancore.sweep.worker import TrialReporter

    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    earlier = study.ask()
    for step in (10, 20, 30):
        earlier.report(2.0, step)  # a share above any run's
    study.tell(earlier, 2.0)
    reporter = TrialReporter("modes", "high_quality", os.getppid())
    reporter.prune = True
    host = load_plugins(extra=[("gancore-sweep-trial", reporter)])
    sets = [a for a in BASE if a != "--set"]
    cfg = resolve(host, build_raw("wgan", None), [*sets, "eval.every=10", 'eval.metrics=[{"name": "modes"}]',
                                                  "log.progress=false"])
    reporter.trial = study.ask()
    run = tmp_path / "run"
    result = Trainer(host, cfg, run, echo=lambda m: None).train()
    assert result.step == 10 and result.stopped.startswith("pruned: its evaluation at step 10")
    assert json.loads((run / "stopped.json").read_text())["step"] == 10
    assert (run / "checkpoints" / "step_0000010.safetensors").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "train.nope=int(1,3)"], "--param train.nope at 1: train.nope: unknown key (allowed: accumulate,"),
    (["--param", "train.accumulate=int(0,3)"], "--param train.accumulate at 0: train.accumulate:"),
    (["--param", "train.seed=int(5,1)"], "--param train.seed: int(5,1) is an empty or inverted range"),
    (["--param", "train.seed=int(3,3)"], "--param train.seed: int(3,3) is an empty or inverted range"),
    (["--param", "optim.generator.lr=loguniform(0,1)"], "--param optim.generator.lr: loguniform(0,1) needs a "
                                                        "positive low end"),
    (["--param", "train.seed=range(1,3)"], "--param train.seed: 'range(1,3)' is not a space"),
    (["--param", "train.accumulate=int(1,2)", "--metric", "label-accuracy"],
     "--metric: label-accuracy applies to conditional runs, not to this"),
    (["--param", "train.accumulate=int(1,2)", "--metric", "fidd"], "--metric: unknown metric 'fidd'"),
    (["--param", "train.accumulate=int(1,2)", "--storage", "sqlite:////no/such/folder/x.db"],
     "--storage: sqlite:////no/such/folder/x.db does not open as Optuna storage"),
    (["--param", "train.n_critic=int(1,3)", "--set", "train.n_critic=2"],
     "--param train.n_critic: also given with --set"),
    ([], "--param: give at least one KEY=SPACE to search"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["sweep", "wgan", "--out", str(tmp_path / "sw"),
                                      *BASE, *args])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"gancore: error: {message}"), line
    assert "Traceback" not in result.output


def test_a_study_of_another_variant_in_the_same_storage_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    foreign = optuna.create_study(study_name="gancore", storage=storage)  # not gancore's
    foreign.tell(foreign.ask(), 0.0)
    result = CliRunner().invoke(cli, ["sweep", "wgan", "--out", str(tmp_path / "a"), *BASE, "--param",
                                      "train.accumulate=int(1,2)", "--storage", storage])
    assert result.output.strip().splitlines()[-1] == (
        "gancore: error: --study gancore: the storage holds a study of that name that gancore did not create")
    first = _sweep("--out", str(tmp_path / "a"), *BASE, "--param", "train.accumulate=int(1,2)", "--storage",
                   f"sqlite:///{tmp_path / 'b.db'}", "--trials", "1", "--pruner", "none")
    assert first.returncode == 0, first.stderr
    other = CliRunner().invoke(cli, ["sweep", "dcgan", "--out", str(tmp_path / "c"), "--param",
                                     "train.accumulate=int(1,2)", "--storage", f"sqlite:///{tmp_path / 'b.db'}"])
    assert other.exit_code == 2
    assert other.output.strip().splitlines()[-1] == (
        'gancore: error: --study gancore: the study in this storage has variant "wgan", this sweep "dcgan"; '
        "name another with --study")


def test_spaces_parse_to_optuna_distributions():
    assert parse_param("a.b=choice(1, x, true)").distribution().choices == (1, "x", True)
    assert parse_param("a.b=int(1,4)").grid() == [1, 2, 3, 4]
    lr = parse_param("a.b=loguniform(1e-5, 1e-3)").distribution()
    assert lr.log and (lr.low, lr.high) == (1e-5, 1e-3)
