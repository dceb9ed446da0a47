"""The command line end to end through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from gancore.cli import cli

SMALL_RUN = ["--set", "train.batch_size=8", "--set", "data.image_size=16",
             "--set", "variant.generator_width=4", "--set", "variant.critic_width=4",
             "--set", "log.progress=false", "--set", "log.samples=4", "--set", "log.every=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from gancore import cli as cli_module

    cli_module.reset_host()
    out = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(out), "--set", "train.steps=3",
                                      "--set", "train.ema=0.5", *SMALL_RUN])
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_the_run_directory(run_dir):
    assert json.loads((run_dir / "config.json").read_text())["variant"]["name"] == "dcgan"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert (run_dir / "samples" / "step_0000003.png").is_file()
    assert (run_dir / "checkpoints" / "step_0000003.safetensors").is_file()


@pytest.mark.parametrize("suffix", [".npy", ".safetensors", ".png"])
def test_sample_formats(run_dir, tmp_path, suffix):
    out = tmp_path / f"s{suffix}"
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--n", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    if suffix == ".npy":
        x = np.load(out)
        assert x.shape == (5, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    elif suffix == ".safetensors":
        assert load_file(str(out))["samples"].shape == (5, 1, 16, 16)
    else:
        assert Image.open(out).size[0] > 16


def test_sample_seed_and_ema(run_dir, tmp_path):
    def draw(*extra):
        out = tmp_path / "x.npy"
        result = CliRunner().invoke(cli, ["sample", str(run_dir), "--n", "4", "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        return np.load(out), result.output

    a, msg = draw("--seed", "3")
    b, _ = draw("--seed", "3")
    c, _ = draw("--seed", "4")
    d, raw_msg = draw("--seed", "3", "--no-ema")
    assert np.array_equal(a, b) and not np.array_equal(a, c) and not np.array_equal(a, d)
    assert "(ema generator)" in msg and "(raw generator)" in raw_msg


def test_sample_from_a_checkpoint_file(run_dir, tmp_path):
    ckpt = run_dir / "checkpoints" / "step_0000003.safetensors"
    out = tmp_path / "s.safetensors"
    assert CliRunner().invoke(cli, ["sample", str(ckpt), "--n", "2", "--out", str(out)]).exit_code == 0
    assert torch.isfinite(load_file(str(out))["samples"]).all()


def test_sample_errors_are_one_line(tmp_path, run_dir):
    result = CliRunner().invoke(cli, ["sample", str(tmp_path / "nope"), "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 2 and "no such run directory or checkpoint file" in result.output
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--out", str(tmp_path / "a.jpg")])
    assert result.exit_code == 2 and "must end in .png, .npy or .safetensors" in result.output


def test_plugins_and_list():
    out = CliRunner().invoke(cli, ["plugins"]).output
    assert "gancore.builtin" in out and "dcgan" in out and "ok" in out
    out = CliRunner().invoke(cli, ["list"]).output
    assert "variants:" in out and "dcgan" in out and "losses:" in out and "hinge" in out
    out = CliRunner().invoke(cli, ["list", "datasets"]).output
    assert "digits" in out and "image-folder" in out and "losses" not in out


def test_help_mentions_every_verb():
    out = CliRunner().invoke(cli, ["--help"]).output
    for verb in ("run", "plugins", "list", "config", "sample"):
        assert verb in out
