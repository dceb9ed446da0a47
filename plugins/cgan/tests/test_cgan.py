"""cGAN: labels through the core, both critics through the contract suite, the aux head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError
from gancore.inference import draw, load_model
from gancore.labels import check_labels, class_rows
from gancore.testing import SMALL, VariantContract, make_config, train

TINY = {"variant.generator_width": 4, "variant.critic_width": 4}


class TestProjectionContract(VariantContract):
    variant = "cgan"
    overrides = {**TINY, "variant.conditioning": "projection"}


class TestConcatContract(VariantContract):
    variant = "cgan"
    overrides = {**TINY, "variant.conditioning": "concat", "variant.label_code": "learned"}


class TestAuxiliaryContract(VariantContract):
    variant = "cgan"
    overrides = {**TINY, "variant.auxiliary": True}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    host = load_plugins()
    out = tmp_path_factory.mktemp("cgan") / "run"
    train(host, make_config(host, "cgan", {**SMALL, **TINY, "variant.auxiliary": True}), out)
    return out


def test_batches_carry_int64_labels(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "cgan", {**SMALL, **TINY}), tmp_path / "run")
    batch = trainer.sampler.next()
    assert batch.y is not None and batch.y.dtype == torch.int64 and batch.y.shape == (8,)
    assert trainer.spec.num_classes == 10


def test_conditional_sampling_returns_the_requested_classes(run_dir):
    model, _ = load_model(load_plugins(), run_dir)
    labels = class_rows(3, 10)
    x, _ = draw(model, len(labels), labels=labels)
    assert x.shape == (30, 1, 16, 16)
    # the label changes the sample: same noise, different class -> different image
    a, _ = draw(model, 1, seed=5, labels=torch.tensor([1]))
    b, _ = draw(model, 1, seed=5, labels=torch.tensor([7]))
    assert not torch.equal(a, b)


def test_wrong_label_range_is_a_clear_error(run_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"class 10 is out of range; this run has 10 classes \(0-9\)"):
        check_labels(torch.tensor([3, 10]), 10)
    with pytest.raises(ConfigError, match="integer class indices"):
        check_labels(torch.tensor([0.5]), 10)
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--label", "12", "--out", str(tmp_path / "a.png")])
    assert result.exit_code == 2 and "--label: class 12 is out of range" in result.output
    assert "Traceback" not in result.output


def test_sample_label_and_grid_by_class(run_dir, tmp_path):
    out = tmp_path / "s.safetensors"
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--n", "6", "--label", "7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = load_file(str(out))
    assert saved["samples"].shape == (6, 1, 16, 16) and saved["labels"].tolist() == [7] * 6
    out = tmp_path / "g.safetensors"
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--n", "20", "--grid-by-class", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert load_file(str(out))["labels"].tolist() == [k for k in range(10) for _ in range(2)]
    png = tmp_path / "g.png"
    assert CliRunner().invoke(cli, ["sample", str(run_dir), "--n", "30", "--grid-by-class",
                                    "--out", str(png)]).exit_code == 0
    from PIL import Image

    w, h = Image.open(png).size
    assert h > 3 * w  # 10 rows of 3


def test_label_options_are_refused_for_unconditional_runs(tmp_path):
    host = load_plugins()
    train(host, make_config(host, "dcgan", {**SMALL, **TINY}), tmp_path / "run")
    args = ["sample", str(tmp_path / "run"), "--label", "1", "--out", str(tmp_path / "a.npy")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "variant 'dcgan' is not conditional" in result.output


def test_conditional_variant_on_unlabelled_data_is_a_config_error(tmp_path):
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(np.full((16, 16), i * 20, np.uint8)).save(folder / f"{i}.png")
    result = CliRunner().invoke(cli, ["run", "cgan", "--out", str(tmp_path / "r"),
                                      "--set", "data.name=image-folder", "--set", f"data.path={folder}",
                                      "--set", "data.image_size=16", "--set", "train.batch_size=4"])
    assert result.exit_code == 2
    assert "variant 'cgan' is conditional and needs labelled data, but 'image-folder' has no labels" in result.output


def test_trains_on_an_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for cls, value in (("dark", 30), ("light", 220)):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((16, 16, 3), value + i, np.uint8)).save(tmp_path / "data" / cls / f"{i}.png")
    host = load_plugins()
    cfg = make_config(host, "cgan", {**{k: v for k, v in SMALL.items() if k != "data.image_size"}, **TINY,
                                      "data.name": "image-folder", "data.path": str(tmp_path / "data"),
                                      "data.image_size": 16})
    trainer = train(host, cfg, tmp_path / "run")
    assert trainer.spec.num_classes == 2 and trainer.spec.shape == (3, 16, 16)


def test_projection_needs_images():
    host = load_plugins()
    cfg = resolve(host, build_raw("cgan"), ["data.name=gaussian-ring", "variant.conditioning=projection"])
    from gancore.kernel import build_run

    with pytest.raises(ConfigError, match="projection needs image data"):
        build_run(cfg, cfg.data_cls(cfg.data).load().spec, torch.device("cpu"))


def test_auxiliary_terms_are_logged(run_dir):
    import json

    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"critic/adv", "critic/aux_real", "critic/aux_fake", "critic/aux_accuracy", "generator/aux"} <= set(record)


def test_sample_grid_has_one_row_per_class(run_dir):
    from PIL import Image

    w, h = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1]).size
    assert h > w  # log.samples=4 -> at least one per class: 10 rows, 1 column


@pytest.mark.slow
def test_a_short_real_run_follows_the_labels(tmp_path):
    """800 steps at 16x16: a judge trained on real digits agrees with the requested labels."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    from digit_judge import fit_judge, to_8x8

    host = load_plugins()
    cfg = make_config(host, "cgan", {**SMALL, "train.steps": 800, "train.batch_size": 32,
                                      "variant.generator_width": 16, "variant.critic_width": 16})
    train(host, cfg, tmp_path / "run")
    model, _ = load_model(host, tmp_path / "run")
    labels = class_rows(30, 10)
    x, _ = draw(model, len(labels), labels=labels)
    judge, _ = fit_judge()
    accuracy = (judge.predict(to_8x8(x)) == labels.numpy()).mean()
    assert accuracy > 0.5, accuracy  # chance is 0.1
