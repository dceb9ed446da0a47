"""Lifecycle hooks: a third party's raising hook is reported in one line, switched off for the rest of
the run, and training continues; the core's side features are plugins on the same hooks."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gancore.app import load_plugins
from gancore.cli import cli

RUN = ["--set", "train.steps=6", "--set", "train.batch_size=8", "--set", "data.image_size=16",
       "--set", "variant.generator_width=8", "--set", "variant.critic_width=8", "--set", "log.every=1",
       "--set", "log.checkpoint_every=2", "--set", "log.sample_every=3", "--set", "log.progress=false"]

RAISING_LOGGER = """
    from pathlib import Path

    from gancore import hookimpl

    CALLS = Path({calls!r})


    @hookimpl
    def gancore_log(step, record):
        with CALLS.open("a") as fh:
            fh.write(f"{{step}}\\n")
        if step == 4:
            raise RuntimeError("the logging service is down")


    @hookimpl
    def gancore_run_end(status):
        with CALLS.open("a") as fh:
            fh.write(f"end {{status}}\\n")
"""


def test_a_raising_logger_is_switched_off_and_the_run_completes(install_plugin, tmp_path):
    calls = tmp_path / "calls.txt"
    install_plugin("bad-logger", RAISING_LOGGER.format(calls=str(calls)))
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), *RUN])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: plugin 'bad-logger' (gancore-bad-logger 0.1) failed in gancore_log at step 4: "
        "RuntimeError: the logging service is down; its lifecycle hooks are off for the rest of this run"
    ]
    assert "Traceback" not in result.output
    assert calls.read_text().split() == ["1", "2", "3", "4"]  # nothing after the failure, not even run_end
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_0000006.safetensors"
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the core's own metrics log is unaffected
    assert (run / "samples" / "step_0000006.png").is_file()


def test_a_config_error_from_run_start_refuses_the_run(install_plugin, tmp_path):
    install_plugin("picky", """
        from gancore import ConfigError, hookimpl

        @hookimpl
        def gancore_run_start(config):
            if config["train"]["batch_size"] < 16:
                raise ConfigError("train.batch_size: picky needs at least 16")
    """)
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), *RUN])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "gancore: error: train.batch_size: picky needs at least 16"
    assert not list((tmp_path / "run" / "checkpoints").iterdir())


def test_the_side_features_are_plugins_and_can_be_switched_off(tmp_path, monkeypatch):
    host = load_plugins()
    features = {r.name: r.source for r in host.records if r.name.startswith("gancore.") and r.name != "gancore.builtin"}
    assert features == dict.fromkeys(["gancore.metrics-log", "gancore.tensorboard", "gancore.periodic-eval",
                                      "gancore.sample-grids", "gancore.init-report"], "gancore (core feature)")
    monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", "gancore.sample-grids")
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), *RUN])
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "run" / "samples").iterdir())
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert "samples: None" in result.output


def test_new_hooks_see_the_run(install_plugin, tmp_path):
    seen = tmp_path / "seen.json"
    install_plugin("watcher", f"""
        import json
        from gancore import hookimpl

        EVENTS = []

        @hookimpl
        def gancore_step_end(step, run):
            EVENTS.append(["step_end", step, run.total_steps, run.is_last])

        @hookimpl
        def gancore_samples_saved(step, path):
            EVENTS.append(["samples", step, path.rsplit("/", 1)[-1]])

        @hookimpl
        def gancore_evaluated(step, results):
            EVENTS.append(["evaluated", step, [r["metric"] for r in results]])

        @hookimpl
        def gancore_checkpoint_saved(step, run):
            EVENTS.append(["checkpoint", step, run.last_checkpoint.name])

        @hookimpl
        def gancore_run_end(run):
            with open({str(seen)!r}, "w") as fh:
                json.dump(EVENTS, fh)
    """)
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), *RUN, "--set", "train.steps=3",
                                      "--set", "eval.every=3", "--set", "eval.n=20",
                                      "--set", 'eval.metrics=[{"name": "fid"}]'])
    assert result.exit_code == 0, result.output
    events = json.loads(seen.read_text())
    # third-party plugins are registered after the core's features, so pluggy calls them first
    assert events == [["step_end", 1, 3, False], ["step_end", 2, 3, False],
                      ["checkpoint", 2, "step_0000002.safetensors"], ["step_end", 3, 3, True],
                      ["samples", 3, "step_0000003.png"], ["evaluated", 3, ["fid"]],
                      ["checkpoint", 3, "step_0000003.safetensors"]]


def test_a_plugin_stops_the_run_early_and_resume_continues_it(install_plugin, tmp_path):
    ends = tmp_path / "ends.txt"
    install_plugin("stopper", f"""
        from pathlib import Path
        from gancore import hookimpl

        @hookimpl
        def gancore_step_end(step, run):
            if step == 3:
                run.stop("the loss plateaued")

        @hookimpl
        def gancore_run_end(step, status):
            with Path({str(ends)!r}).open("a") as fh:
                fh.write(f"{{status}} {{step}}\\n")
    """)
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(run), *RUN])
    assert result.exit_code == 0, result.output
    assert "stopped early (the loss plateaued): 3 steps" in result.output
    assert json.loads((run / "stopped.json").read_text()) == {"step": 3, "reason": "the loss plateaued"}
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_0000003.safetensors"
    assert ends.read_text().split("\n")[0] == "stopped 3"
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(run), "--resume", *RUN])
    assert result.exit_code == 0, result.output
    assert "done: 6 steps" in result.output
    assert not (run / "stopped.json").exists()
    assert ends.read_text().split("\n")[1] == "completed 6"
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
