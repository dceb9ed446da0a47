"""Damaged and edited checkpoints (issues 18 and 19): a checkpoint is external input. Its metadata is
validated against a schema and its tensors against the networks and optimizers they are loaded
into; `sample` and `--resume` refuse with one line naming the file and the key; a damaged latest
checkpoint is skipped for the older good one, said in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.errors import CheckpointError, ConfigError
from gancore.inference import load_model
from gancore.testing import SMALL, make_config, train

TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4, "log.checkpoint_every": 2}
HOST = load_plugins()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(HOST, make_config(HOST, "dcgan", {**TINY, "train.steps": 4}), out)
    return out


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata())  # noqa: SIM118


def edited(run: Path, where: Path, *, meta: dict[str, str | None] | None = None,
           tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """A copy of ``run`` whose latest checkpoint has some metadata (None: removed) or tensors replaced."""
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(run, where)
    path = where / "checkpoints" / "step_0000004.safetensors"
    t, m = read(path)
    for key, value in (meta or {}).items():
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value
    t.update(tensors or {})
    save_file(t, str(path), metadata=m)
    return where


def refused(run_dir: Path, match: str) -> None:
    """Sampling refuses ``run_dir`` with one line matching ``match``; resuming says so in one line
    and continues from the older good checkpoint; with only the damaged one left it refuses."""
    from gancore.kernel import Trainer

    with pytest.raises((CheckpointError, ConfigError), match=match) as info:
        load_model(HOST, run_dir)
    assert "\n" not in str(info.value)
    lines: list[str] = []
    cfg = make_config(HOST, "dcgan", {**TINY, "train.steps": 6})
    trainer = Trainer(HOST, cfg, run_dir, resume=True, echo=lines.append)
    assert trainer.step == 2 and any(line.startswith("resume:") and re.search(match, line) for line in lines)
    (run_dir / "checkpoints" / "step_0000002.safetensors").unlink()
    with pytest.raises((CheckpointError, ConfigError), match=match):
        Trainer(HOST, cfg, run_dir, resume=True, echo=lines.append)


@pytest.mark.parametrize(("key", "value", "match"), [
    ("step", "-5", "metadata 'step' must be a non-negative integer, found '-5'"),
    ("step", "four", "metadata 'step' must be a non-negative integer"),
    ("step", None, "lacks 'step'"),
    ("critic_steps", "2.5", "metadata 'critic_steps' must be a non-negative integer"),
    ("config", "not json", "metadata 'config' must be JSON"),
    ("config", "[1, 2]", "metadata 'config' must be a JSON object"),
    ("updates", '{"critic": -1}', "non-negative integer counts"),
    ("sampler", "null", "metadata 'sampler' must be a JSON object"),
    ("optim.critic", "[]", "metadata 'optim.critic' must be a JSON object"),
    ("data_spec", '{"kind": "image"}', "data_spec is not a data spec"),
    ("data_spec", "{", "data_spec is not a data spec"),
])
def test_edited_metadata_is_refused_with_the_key(run, tmp_path, key, value, match):
    refused(edited(run, tmp_path / "run", meta={key: value}), match)


@pytest.mark.parametrize("dtype", [torch.bool, torch.int32, torch.float64])
def test_weights_of_another_dtype_are_refused_not_cast(run, tmp_path, dtype):
    t, _ = read(run / "checkpoints" / "step_0000004.safetensors")
    key = next(k for k in t if k.startswith("generator.") and k.endswith("weight"))
    refused(edited(run, tmp_path / "run", tensors={key: t[key].to(dtype)}), f"tensor '{key}' is {dtype}")


def test_optimizer_moments_of_the_wrong_shape_are_refused(run, tmp_path):
    t, _ = read(run / "checkpoints" / "step_0000004.safetensors")
    key = next(k for k in t if k.startswith("optim.critic.") and k.endswith("exp_avg"))
    where = edited(run, tmp_path / "run", tensors={key: torch.zeros(5, 5)})
    from gancore.kernel import Trainer

    lines: list[str] = []
    cfg = make_config(HOST, "dcgan", {**TINY, "train.steps": 6})
    assert Trainer(HOST, cfg, where, resume=True, echo=lines.append).step == 2  # the older one
    assert any(f"'{key}' is [5, 5]" in line for line in lines)
    (where / "checkpoints" / "step_0000002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=rf"'{key}' is \[5, 5\]"):
        Trainer(HOST, cfg, where, resume=True, echo=lines.append)


def test_a_damaged_latest_checkpoint_falls_back_to_the_older_good_one(run, tmp_path):
    where = tmp_path / "run"
    shutil.copytree(run, where)
    latest = where / "checkpoints" / "step_0000004.safetensors"
    latest.write_bytes(latest.read_bytes()[:1000])  # a write cut short
    lines: list[str] = []
    from gancore.kernel import Trainer

    trainer = Trainer(HOST, make_config(HOST, "dcgan", {**TINY, "train.steps": 6}), where, resume=True,
                      echo=lines.append)
    assert trainer.step == 2
    notice = [line for line in lines if line.startswith("resume:")]
    assert len(notice) == 1 and "step_0000004" in notice[0] and "step_0000002" in notice[0]
    trainer.train()
    assert trainer.step == 6


def test_resuming_below_the_checkpoints_step_is_one_line(run, tmp_path):
    where = tmp_path / "run"
    shutil.copytree(run, where)
    config_before = (where / "config.json").read_text()
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=2"])
    assert result.exit_code == 2 and "train.steps: 2 is below the step of the checkpoint it resumes (4" in result.output
    assert (where / "config.json").read_text() == config_before  # nothing rewritten


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["step", "critic_steps", "config", "updates", "sampler", "data_spec", "optim.critic",
                            "optim.generator", "scaler.critic", "codes", "precision", "format_version"]),
       value=st.one_of(st.text(max_size=20), st.sampled_from(["{}", "[]", "null", "1", '{"a": 1}', "-1", "1e9"])))
def test_any_edit_of_the_metadata_loads_or_is_one_line(run, tmp_path_factory, key, value):
    where = edited(run, tmp_path_factory.mktemp("h") / "run", meta={key: value})
    try:
        load_model(HOST, where)
    except (CheckpointError, ConfigError) as exc:
        assert "\n" not in str(exc)


def test_a_diverged_run_writes_no_checkpoint_of_nan_weights(tmp_path):
    from gancore.errors import TrainingError

    cfg = make_config(HOST, "dcgan", {**TINY, "train.steps": 20, "train.precision": "fp16",
                                      "optim.generator.lr": 1e6, "optim.critic.lr": 1e6})
    with pytest.raises(TrainingError, match="non-finite"):
        train(HOST, cfg, tmp_path / "run")
    from gancore.kernel.checkpoint import list_checkpoints, read_checkpoint

    for _, path in list_checkpoints(tmp_path / "run" / "checkpoints"):  # whatever was written is finite
        assert all(torch.isfinite(v).all() for v in read_checkpoint(path).tensors.values() if v.is_floating_point())


def test_sampling_nan_weights_is_refused_in_one_line(run, tmp_path):
    t, _ = read(run / "checkpoints" / "step_0000004.safetensors")
    nan = {k: torch.full_like(v, float("nan")) for k, v in t.items() if k.startswith(("generator.", "ema."))
           and v.is_floating_point() and "running" not in k}
    where = edited(run, tmp_path / "run", tensors=nan)
    result = CliRunner().invoke(cli, ["sample", str(where), "--n", "4", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "NaN or infinite" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("damage", ["torn", "binary", "list", "empty", "folder"])
def test_a_damaged_metrics_log_never_blocks_resume(run, tmp_path, damage):
    where = tmp_path / "run"
    shutil.copytree(run, where)
    log = where / "metrics.jsonl"
    if damage == "torn":
        log.write_text(log.read_text() + '{"step": 5, "critic/ad')
    elif damage == "binary":
        log.write_bytes(bytes(range(256)))
    elif damage == "list":
        log.write_text("[1, 2]\n")
    elif damage == "empty":
        log.write_text("")
    else:
        log.unlink()
        log.mkdir()
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=6"])
    assert result.exit_code == 0, result.output
    assert (where / "checkpoints" / "step_0000006.safetensors").is_file()


@pytest.mark.parametrize(("text", "message"), [("{bad", "is not valid JSON"), ("[1]", "must hold a JSON object")])
def test_a_damaged_config_json_is_one_line_on_resume(run, tmp_path, text, message):
    where = tmp_path / "run"
    shutil.copytree(run, where)
    (where / "config.json").write_text(text)
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=6"])
    assert result.exit_code == 2 and f"config.json {message}" in result.output


@pytest.mark.parametrize(("edit", "match"), [
    ({"tensors": {"sampler.perm0": "shifted"}}, "'sampler.perm0' is not an order of the"),
    ({"tensors": {"sampler.perm0": "float"}}, "'sampler.perm0' is not an order of the"),
    ({"meta": {"sampler": '{"pos0": 99999999}'}}, "sampler.pos0 must be an integer in 0.."),
    ({"meta": {"sampler": '{"pos0": "x"}'}}, "sampler.pos0 must be an integer"),
    ({"tensors": {"sampler.rng": "zeros"}}, "'sampler.rng' is not a generator state"),
    ({"tensors": {"rng.latent": "zeros"}}, "cannot restore the training state"),
])
def test_sampler_and_rng_state_out_of_range_or_of_the_wrong_dtype(run, tmp_path, edit, match):
    t, _ = read(run / "checkpoints" / "step_0000004.safetensors")
    make = {"shifted": lambda v: v + 10**6, "float": lambda v: v.float(), "zeros": lambda v: torch.zeros(3)}
    tensors = {k: make[how](t[k]) for k, how in edit.get("tensors", {}).items()}
    where = edited(run, tmp_path / "run", meta=edit.get("meta"), tensors=tensors)
    (where / "checkpoints" / "step_0000002.safetensors").unlink()  # no older one to fall back to
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=6"])
    assert result.exit_code == 2 and re.search(match, result.output), result.output


def test_a_checkpoints_symlink_loop_is_one_line(run, tmp_path):
    where = tmp_path / "run"
    shutil.copytree(run, where)
    shutil.rmtree(where / "checkpoints")
    (where / "checkpoints").symlink_to(where / "checkpoints")
    for args in (["sample", str(where), "--out", str(tmp_path / "x.png")],
                 ["run", "dcgan", "--out", str(where), "--resume", "--set", "train.steps=6"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "gancore: error:" in result.output, result.output
        assert isinstance(result.exception, SystemExit)  # a one-line exit, not an escaped exception
