"""Checkpoints: safetensors only, atomic, round trip, clear errors for bad files, exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from gancore.cli import cli
from gancore.errors import CheckpointError
from gancore.kernel.checkpoint import FORMAT, read_checkpoint
from gancore.testing import SMALL, make_config, train, weights

TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4}


def test_checkpoint_holds_everything_needed_to_resume(host, tmp_path):
    cfg = make_config(host, "dcgan", {**TINY, "train.ema": 0.9})
    trainer = train(host, cfg, tmp_path / "run")
    ckpt = read_checkpoint(trainer.last_checkpoint)
    keys = set(ckpt.tensors)
    for prefix in ("generator.", "critic.", "ema.", "optim.generator.", "optim.critic.", "sampler."):
        assert any(k.startswith(prefix) for k in keys), prefix
    assert {"rng.torch", "rng.latent"} <= keys
    assert ckpt.metadata["format"] == FORMAT and ckpt.step == 2
    assert ckpt.config == cfg.to_dict()
    versions = json.loads(ckpt.metadata["versions"])
    assert "torch" in versions and "gancore" in versions and "gancore-dcgan" in versions
    assert not list((tmp_path / "run" / "checkpoints").glob(".*tmp"))


def test_old_checkpoints_are_pruned(host, tmp_path):
    cfg = make_config(host, "dcgan", {**TINY, "train.steps": 5, "log.checkpoint_every": 1,
                                       "log.keep_checkpoints": 2})
    train(host, cfg, tmp_path / "run")
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step_0000004.safetensors", "step_0000005.safetensors"]


def test_resume_gives_bitwise_the_same_weights(host, tmp_path):
    """N steps + resume + M steps == N+M steps, bitwise, on the CPU (EMA included)."""
    over = {**TINY, "train.ema": 0.9, "log.checkpoint_every": 3}
    straight = train(host, make_config(host, "dcgan", {**over, "train.steps": 7}), tmp_path / "a")
    train(host, make_config(host, "dcgan", {**over, "train.steps": 3}), tmp_path / "b")
    resumed = train(host, make_config(host, "dcgan", {**over, "train.steps": 7}), tmp_path / "b",
                    resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))


def test_resume_through_the_cli(tmp_path):
    out = str(tmp_path / "run")
    common = ["--out", out, "--set", "train.batch_size=8", "--set", "data.image_size=16",
              "--set", "variant.generator_width=4", "--set", "variant.critic_width=4",
              "--set", "log.progress=false"]
    first = CliRunner().invoke(cli, ["run", "dcgan", "--set", "train.steps=2", *common])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, ["run", "dcgan", "--set", "train.steps=2", *common])
    assert again.exit_code == 2 and "already holds a run; pass --resume" in again.output
    more = CliRunner().invoke(cli, ["run", "dcgan", "--resume", "--out", out, "--set", "train.steps=4"])
    assert more.exit_code == 0, more.output
    assert "resumed from" in more.output and "step_0000004.safetensors" in more.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["steps"] == 4


def test_resume_of_an_empty_dir_is_an_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "dcgan", "--resume", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "holds no run to resume" in result.output


def test_truncated_checkpoint_is_a_clear_error(host, tmp_path):
    trainer = train(host, make_config(host, "dcgan", TINY), tmp_path / "run")
    path = trainer.last_checkpoint
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_checkpoint(path)
    result = CliRunner().invoke(cli, ["sample", str(path), "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and "truncated or corrupt" in result.output
    assert "Traceback" not in result.output


def test_foreign_safetensors_file_is_a_clear_error(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a gancore checkpoint"):
        read_checkpoint(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_checkpoint(tmp_path / "junk.safetensors")


def test_checkpoint_that_does_not_fit_the_config(host, tmp_path):
    train(host, make_config(host, "dcgan", TINY), tmp_path / "run")
    cfg = make_config(host, "dcgan", {**TINY, "variant.generator_width": 8, "train.steps": 4})
    from gancore.kernel import Trainer

    with pytest.raises(CheckpointError, match="'generator' weights do not fit"):
        Trainer(host, cfg, tmp_path / "run", resume=True, echo=lambda _: None)


def test_nan_guard_names_the_term_that_went_non_finite_first(host, tmp_path, monkeypatch):
    """The critic's loss goes NaN in step 3; the generator's follows in the same step (the critic's
    weights are NaN by then): the error names the critic's term first, and the plugin."""
    from gancore.errors import TrainingError
    from gancore.losses import NonSaturatingLoss

    cfg = make_config(host, "dcgan", {**TINY, "train.steps": 6, "log.every": 4, "log.checkpoint_every": 2})
    original = NonSaturatingLoss.critic_loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        value = original(self, *args, **kwargs)
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setattr(NonSaturatingLoss, "critic_loss", poisoned)
    with pytest.raises(TrainingError) as info:
        train(host, cfg, tmp_path / "run")
    message = str(info.value)
    assert "(critic/adv first, in step 3)" in message and "variant 'dcgan'" in message, message
    assert "generator/adv" in message and "step_0000002" in message, message


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(host, tmp_path, monkeypatch):
    from gancore.errors import TrainingError
    from gancore.losses import NonSaturatingLoss

    cfg = make_config(host, "dcgan", {**TINY, "train.steps": 6, "log.every": 2,
                                       "log.checkpoint_every": 2})
    original = NonSaturatingLoss.generator_loss
    calls = {"n": 0}

    def poisoned(self, fake_out, real_out=None):
        calls["n"] += 1
        value = original(self, fake_out, real_out)
        return value * float("nan") if calls["n"] >= 3 else value

    monkeypatch.setattr(NonSaturatingLoss, "generator_loss", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite loss in generator/adv.* \(generator/adv first, in step 3\); "
                       r"variant 'dcgan' with loss 'nonsaturating'; training stopped before step 4.*step_0000002"):
        train(host, cfg, tmp_path / "run")
    names = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    assert names == ["step_0000002.safetensors"]
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoints" / names[0])
    assert all(torch.isfinite(v).all() for k, v in ckpt.tensors.items() if v.is_floating_point())


def test_fp16_with_gradient_penalty_trains_and_resumes_exactly(host, tmp_path):
    """fp16 autocast, one GradScaler per player, the scaled-output penalty from the first step."""
    over = {**TINY, "train.device": "cpu", "train.precision": "fp16", "train.n_critic": 2,
            "log.checkpoint_every": 2,
            "regularizers": [{"name": "gradient-penalty", "weight": 10.0}]}
    straight = train(host, make_config(host, "dcgan", {**over, "train.steps": 4}), tmp_path / "a")
    assert straight.state.scalers["critic"].is_enabled()
    record = json.loads((tmp_path / "a" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "critic/gradient-penalty" in record and "critic/gradient-penalty_overflow" in record
    ckpt = read_checkpoint(straight.last_checkpoint)
    assert json.loads(ckpt.metadata["scaler.critic"])["scale"] > 0
    train(host, make_config(host, "dcgan", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "dcgan", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
