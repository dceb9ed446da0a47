"""Issue 29's settings family: validation knows what the run can take, at resolve time, before any
directory is made — finite floats for every float setting (one rule in ``Settings``), an upper bound on
every integer setting (seeds within 0..2**63-1), and ``--set`` keys and values that Python's ``int``
would choke on refused in one line."""

from __future__ import annotations

import re
import typing

import annotated_types
import pytest
from click.testing import CliRunner

from gancore.app import host
from gancore.cli import cli
from gancore.interfaces import MAX_INT, Settings


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_integer_setting_has_an_upper_bound():
    h = host()
    for registry in (h.variants, h.losses, h.regularizers, h.datasets, h.metrics, h.augments):
        for name in registry.names():
            registry.get(name)  # import every plugin's settings
    import gancore.sections  # noqa: F401

    unbounded = []
    for cls in set(_subclasses(Settings)):
        if not cls.__module__.startswith(("gancore", "gancore_")) or cls.__module__.startswith("gancore_example"):
            continue
        for name, field in cls.model_fields.items():
            kinds = typing.get_args(field.annotation) or (field.annotation,)
            if int in kinds and bool not in kinds and not any(isinstance(m, annotated_types.Le | annotated_types.Lt)
                                                              for m in field.metadata):
                unbounded.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert not sorted(unbounded), "give these an upper bound (le=...): " + ", ".join(sorted(unbounded))


@pytest.mark.parametrize(("variant", "assignment", "key"), [
    ("pix2pix", "variant.l1_weight=Infinity", "variant.l1_weight"),
    ("dcgan", "loss.real_label=NaN", "loss.real_label"),
    ("wgan", "regularizers.0.weight=Infinity", "regularizers.0.weight"),
    ("wgan", "regularizers.0.target=-Infinity", "regularizers.0.target"),
    ("cyclegan", "variant.cycle_weight=NaN", "variant.cycle_weight"),
    ("infogan", "variant.info_weight=Infinity", "variant.info_weight"),
    ("dcgan", "train.ema=NaN", "train.ema"),
])
def test_non_finite_floats_are_refused_naming_the_key(tmp_path, variant, assignment, key):
    result = CliRunner().invoke(cli, ["run", variant, "--out", str(tmp_path / "run"), "--set", assignment])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1] == f"gancore: error: {key}: Input should be a finite number, got " \
                                                     f"{assignment.split('=')[1]}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("variant", "assignment", "message"), [
    ("dcgan", f"train.seed={2**63}", f"train.seed: Input should be less than or equal to {MAX_INT}"),
    ("wgan", f"data.seed={2**64}", f"data.seed: Input should be less than or equal to {MAX_INT}"),
    ("wgan", "variant.mlp_hidden=100000000", "variant.mlp_hidden: Input should be less than or equal to 65536"),
    ("cyclegan", "variant.pool_size=1000000000", "variant.pool_size: Input should be less than or equal to 100000"),
    ("dcgan", "train.steps=" + "9" * 5000, "--set train.steps: Exceeds the limit (4300 digits) for integer string "
                                           "conversion: value has 5000 digits"),
    ("wgan", "regularizers.².weight=5", "--set regularizers.²: expected a list index below 1 or the name of one"),
    ("dcgan", "train.device=cuda:٣", "train.device: expected auto, cpu, cuda or cuda:N"),
])
def test_sizes_seeds_and_odd_digits_are_one_line(tmp_path, variant, assignment, message):
    extra = ["--set", "data.name=gaussian-grid"] if assignment.startswith("data.seed") else []
    result = CliRunner().invoke(cli, ["run", variant, "--out", str(tmp_path / "run"), *extra, "--set", assignment])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith(f"gancore: error: {message}")
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_the_settings_base_bounds_a_third_partys_integers_and_floats():
    class Theirs(Settings):
        count: int = 1
        scale: float = 1.0

    with pytest.raises(ValueError, match="must be between -\\(2\\*\\*63 - 1\\) and 2\\*\\*63 - 1"):
        Theirs(count=2**63)
    with pytest.raises(ValueError, match="finite number"):
        Theirs(scale=float("inf"))
    assert Theirs(count=MAX_INT, scale=-1e300).count == MAX_INT


RUN = ["--set", "data.name=gaussian-grid", "--set", "train.steps=4", "--set", "train.batch_size=16",
       "--set", "variant.mlp_hidden=16", "--set", "log.progress=false", "--set", "log.every=1"]


@pytest.mark.parametrize(("assignment", "shown"), [
    ("train.seed=5", "train.seed 0 -> 5"),
    ("loss.name=hinge", 'loss.name "wasserstein" -> "hinge"'),
    ("optim.generator.name=rmsprop", 'optim.generator.name "adam" -> "rmsprop"'),
    ("variant.mlp_hidden=32", "variant.mlp_hidden 16 -> 32"),
    ("train.batch_size=8", "train.batch_size 16 -> 8"),
])
def test_resume_refuses_what_cannot_change_and_applies_what_can(tmp_path, assignment, shown):
    import json

    run = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "wgan", "--out", str(run), *RUN]).exit_code == 0
    before = (run / "config.json").read_text()
    refused = runner.invoke(cli, ["run", "wgan", "--out", str(run), "--resume", *RUN, "--set", assignment])
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip().splitlines()[-1].startswith(f"gancore: error: --resume: {shown}: cannot change on "
                                                              "resume")
    assert (run / "config.json").read_text() == before
    # the same in a config file: compared after it is resolved
    key, value = assignment.split("=")
    section, _, rest = key.partition(".")
    nested: dict = {}
    node = nested.setdefault(section, {})
    for part in rest.split(".")[:-1]:
        node = node.setdefault(part, {})
    node[rest.split(".")[-1]] = json.loads(value) if value[0].isdigit() else value
    (tmp_path / "c.json").write_text(json.dumps(nested))
    rest_of_run = [w for a in RUN[1::2] if not a.startswith(key + "=") for w in ("--set", a)]
    refused = runner.invoke(cli, ["run", "wgan", "--out", str(run), "--resume", "--config", str(tmp_path / "c.json"),
                                  *rest_of_run])
    assert refused.exit_code == 2 and "gancore: error: --resume: " in refused.output and shown in refused.output
    allowed = runner.invoke(cli, ["run", "wgan", "--out", str(run), "--resume", *RUN, "--set", "train.steps=6",
                                  "--set", "optim.generator.lr=0.0005", "--set", "log.every=2"])
    assert allowed.exit_code == 0, allowed.output
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["steps"] == 6 and config["optim"]["generator"]["lr"] == 0.0005


@pytest.mark.parametrize(("variant", "sets", "match"), [
    ("infogan", ["train.batch_size=1"], r"train.batch_size: 1 is below 2, the smallest batch .*'infogan'"),
    ("cyclegan", ["data.image_size=8"], r"data.image_size: 8 is below 12, the smallest image .*'cyclegan'"),
    ("cyclegan", ["data.image_size=16", "variant.critic_layers=3"], r"data.image_size: 16 is below 24"),
    ("pix2pix", ["data.image_size=16", "variant.critic_layers=3"], r"data.image_size: 16 is below 24"),
])
def test_sizes_the_networks_cannot_take_are_refused_at_resolve_time(tmp_path, variant, sets, match):
    """A variant declares the batch and image sizes its networks take (Capabilities.min_batch_size,
    min_image_size, per setting); a smaller one is one line naming the key before any directory is made."""
    args = ["run", variant, "--out", str(tmp_path / "run"), "--set", "train.steps=1", "--set", "log.progress=false"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and re.search(match, result.output), result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("variant", "sets"), [
    ("infogan", ["train.batch_size=2"]), ("cyclegan", ["data.image_size=12", "train.batch_size=2"]),
])
def test_the_declared_smallest_sizes_train(tmp_path, variant, sets):
    args = ["run", variant, "--out", str(tmp_path / "run"), "--set", "train.steps=1", "--set", "log.progress=false",
            "--set", "log.sample_every=0"]
    for item in sets:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
