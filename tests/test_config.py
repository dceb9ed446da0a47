"""Config files, --set overrides, validation errors (one line, exit code 2), `gancore config`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gancore.cli import cli
from gancore.config import apply_set, build_raw, parse_value, resolve
from gancore.errors import ConfigError


def test_defaults_come_from_core_then_variant(host):
    cfg = resolve(host, build_raw("dcgan"))
    assert cfg.data_cls.name == "digits" and cfg.data.image_size == 32
    assert cfg.loss_cls.name == "nonsaturating"
    assert cfg.optim.generator.betas == (0.5, 0.999) and cfg.optim.critic.lr == 2e-4
    assert cfg.train.n_critic == 1 and cfg.train.precision == "auto"


def test_set_values_parse_as_json_else_string():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[0.0, 0.9]") == [0.0, 0.9] and parse_value("hinge") == "hinge"
    raw = {"variant": {"name": "dcgan"}}
    apply_set(raw, "optim.critic.betas=[0.0, 0.9]")
    apply_set(raw, "loss=hinge")
    apply_set(raw, "regularizers=[{\"name\": \"x\", \"weight\": 1}]")
    apply_set(raw, "regularizers.0.weight=5")
    assert raw["optim"]["critic"]["betas"] == [0.0, 0.9]
    assert raw["loss"] == "hinge" and raw["regularizers"][0]["weight"] == 5


def test_file_then_set_precedence(host, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('variant = "dcgan"\n[train]\nsteps = 7\nbatch_size = 16\n[loss]\nname = "hinge"\n')
    cfg = resolve(host, build_raw(None, path), ["train.steps=9"])
    assert cfg.train.steps == 9 and cfg.train.batch_size == 16 and cfg.loss_cls.name == "hinge"
    js = tmp_path / "run.json"
    js.write_text(json.dumps(cfg.to_dict()))
    assert resolve(host, build_raw("dcgan", js)).to_dict() == cfg.to_dict()


def test_loss_options_are_validated_by_the_loss(host):
    cfg = resolve(host, build_raw("dcgan"), ["loss.real_label=0.9"])
    assert cfg.loss.real_label == 0.9
    with pytest.raises(ConfigError, match=r"loss.real_label: Input should be less than or equal to 1"):
        resolve(host, build_raw("dcgan"), ["loss.real_label=2"])
    with pytest.raises(ConfigError, match=r"loss.real_label: unknown key"):
        resolve(host, build_raw("dcgan"), ["loss.name=hinge", "loss.real_label=0.9"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--set", "train.stepz=5"],
            "train.stepz: unknown key (allowed: accumulate, allocator, batch_size, channels_last, compile, device, "
            "ema, ema_half_life_kimg, ema_rampup, fused_optimizer, init_from, init_strict, n_critic, precision, "
            "seed, steps, threads)",
        ),
        (["--set", "train.steps=many"], "train.steps: Input should be a valid integer"),
        (["--set", "train.steps=0"], "train.steps: Input should be greater than or equal to 1"),
        (["--set", "train.precision=fp8"], "train.precision: Input should be 'auto', 'fp32', 'bf16' or 'fp16'"),
        (["--set", "train.device=tpu"], "train.device: expected auto, cpu, cuda or cuda:N"),
        (
            ["--set", "data.name=nosuchdata"],
            "data.name: unknown dataset 'nosuchdata'; installed: celeba, cifar10, digits, digits-pair, digits-restore, "
            "fashion-mnist, gaussian-grid, gaussian-ring, hf-dataset, image-folder, mnist, pack, paired, stylegan-zip, "
            "torch-dataset, unpaired",
        ),
        (["--set", "loss.name=hinj"], "did you mean 'hinge'?"),
        (["--set", "variant.latent_dim=-1"], "variant.latent_dim: Input should be greater than or equal to 1"),
        (["--set", "optim.critic.betas=[0.5, 1.5]"], "optim.critic.betas: each beta must be in [0, 1)"),
        (["--set", "nonsense"], "--set 'nonsense': expected dotted.key=value"),
        (["--config", "missing.toml"], "--config: no such file missing.toml"),
    ],
)
def test_config_mistakes_are_one_line_with_exit_code_2(args, expected):
    result = CliRunner().invoke(cli, ["run", "dcgan", "--dry-run", *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_variant_lists_installed():
    result = CliRunner().invoke(cli, ["run", "dcgna", "--dry-run"])
    assert result.exit_code == 2
    assert "unknown variant 'dcgna'; installed: " in result.output and "did you mean 'dcgan'?" in result.output


def test_bad_toml_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 1")
    result = CliRunner().invoke(cli, ["run", "dcgan", "--dry-run", "--config", str(bad)])
    assert result.exit_code == 2 and "is not valid TOML" in result.output


def test_config_command_prints_defaults_and_descriptions():
    result = CliRunner().invoke(cli, ["config", "dcgan"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[variant]" in out and "generator_width = 32" in out and "Length of the noise vector z" in out
    assert "[optim.critic]" in out and "lr = 0.0002" in out
    assert "[data]" in out and 'name = "digits"' in out


def test_config_command_output_is_a_valid_config(tmp_path, host):
    text = CliRunner().invoke(cli, ["config", "dcgan"]).output
    path = tmp_path / "c.toml"
    path.write_text(text)
    cfg = resolve(host, build_raw(None, path))
    assert cfg.to_dict() == resolve(host, build_raw("dcgan")).to_dict()


def test_dry_run_prints_resolved_json():
    result = CliRunner().invoke(cli, ["run", "dcgan", "--dry-run", "--set", "train.steps=3"])
    assert result.exit_code == 0
    assert json.loads(result.output)["train"]["steps"] == 3


def test_set_reaches_into_lists_the_variant_defaults_provide(host):
    cfg = resolve(host, build_raw("wgan"), ["variant.mode=gp", "regularizers.0.weight=5"])
    assert [(c.name, s.weight) for c, s in cfg.regularizers] == [("gradient-penalty", 5.0)]
    with pytest.raises(ConfigError, match=r"regularizers has no item 3; set the whole list"):
        resolve(host, build_raw("dcgan"), ["regularizers.3.weight=5"])


def test_linear_learning_rate_decay():
    from gancore.config import OptimizerSettings

    s = OptimizerSettings(lr=1.0, schedule="linear", decay_start=0.5)
    assert [s.lr_at(i, 10) for i in (0, 4, 5, 6, 8, 9)] == [1.0, 1.0, 1.0, 0.8, 0.4, 0.2]
    assert OptimizerSettings(lr=0.3).lr_at(9, 10) == 0.3


def test_schedule_is_applied_by_the_kernel(host, tmp_path):
    from gancore.testing import SMALL, make_config, train

    cfg = make_config(host, "dcgan", {**SMALL, "train.steps": 4, "variant.generator_width": 4,
                                       "variant.critic_width": 4, "optim.generator.schedule": "linear",
                                       "optim.generator.decay_start": 0.0})
    trainer = train(host, cfg, tmp_path / "run")
    # the last step (index 3 of 4) ran at lr * 1/4
    assert trainer.state.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-4 / 4)
    assert trainer.state.optimizers["critic"].param_groups[0]["lr"] == 2e-4


def test_set_of_a_new_data_source_drops_the_variant_defaults_for_the_old_one(host, install_plugin):
    from gancore.app import load_plugins

    install_plugin("tiny", """
from gancore import hookimpl
from gancore_dcgan import DCGAN

class Tiny(DCGAN):
    '''DCGAN with a data default of its own.'''
    name = "tiny"

    @classmethod
    def defaults(cls, config):
        return {**DCGAN.defaults(config), "data": {"name": "digits", "image_size": 16}}

@hookimpl
def gancore_register_variants():
    return [Tiny]
""")
    host = load_plugins()
    assert resolve(host, build_raw("tiny")).data.image_size == 16
    cfg = resolve(host, build_raw("tiny"), ["data.name=gaussian-ring"])
    assert cfg.data_cls.name == "gaussian-ring"


def test_config_output_round_trips_the_eval_section(tmp_path):
    from click.testing import CliRunner

    from gancore.cli import cli

    runner = CliRunner()
    out = runner.invoke(cli, ["config", "dcgan", "--set", 'eval.metrics=[{"name": "kid", "subsets": 3}]',
                              "--set", "eval.every=100"])
    assert out.exit_code == 0, out.output
    assert "[[eval.metrics]]" in out.output
    (tmp_path / "c.toml").write_text(out.output)
    again = runner.invoke(cli, ["run", "dcgan", "--config", str(tmp_path / "c.toml"), "--dry-run"])
    resolved = json.loads(again.output)
    assert resolved["eval"]["every"] == 100 and resolved["eval"]["metrics"][0]["subsets"] == 3


def test_fast_path_switches_take_booleans_from_older_runs():
    from gancore.app import load_plugins

    host = load_plugins()
    cfg = resolve(host, build_raw("dcgan"), ["train.channels_last=false", "train.fused_optimizer=true"])
    assert (cfg.train.channels_last, cfg.train.fused_optimizer) == ("off", "on")


def test_defaults_can_depend_on_the_kind_of_data(host):
    from gancore.config import build_raw, resolve

    image = resolve(host, build_raw("wgan"), ["variant.mode=gp"])
    grid = resolve(host, build_raw("wgan"), ["variant.mode=gp", "data.name=gaussian-grid"])
    assert image.data_kind == "image" and not image.from_data
    assert image.train.steps == 1500 and image.optim.critic.lr == 1e-4 and image.regularizers[0][1].weight == 10.0
    assert grid.data_kind == "vector"
    assert grid.train.steps == 6000 and grid.train.batch_size == 256 and grid.optim.critic.lr == 2e-3
    assert grid.optim.generator.schedule == "linear" and grid.regularizers[0][1].weight == 1.0
    assert {"train.steps", "train.batch_size", "optim.critic.lr", "regularizers"} <= set(grid.from_data)
    mine = resolve(host, build_raw("wgan"), ["data.name=gaussian-grid", "train.steps=100", "optim.critic.lr=1e-3"])
    assert mine.train.steps == 100 and mine.optim.critic.lr == 1e-3  # the user's values win
    assert "train.steps" not in mine.from_data and "optim.critic.lr" not in mine.from_data
    clip = resolve(host, build_raw("wgan"), ["variant.mode=clip", "data.name=gaussian-grid"])
    assert not clip.from_data and clip.optim.critic.name == "rmsprop"


def test_gancore_config_says_which_defaults_came_from_the_data():
    from click.testing import CliRunner

    from gancore.cli import cli

    out = CliRunner().invoke(cli, ["config", "wgan", "--set", "data.name=gaussian-grid", "--set", "train.steps=7"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("batch_size = 256") and "[default for vector data]" in line for line in lines)
    assert any(line.startswith("steps = 7") and "[default for vector data]" not in line for line in lines)
    image = CliRunner().invoke(cli, ["config", "wgan"])
    assert "default for" not in image.output


@pytest.mark.parametrize(("assignment", "message"), [
    ("optim.encoder.lr=-1", "optim.encoder.lr: Input should be greater than 0"),
    ("optim.encoder.betas=[2, 3]", "optim.encoder.betas: each beta must be in [0, 1)"),
    ("optim.encoder.bogus=1", "optim.encoder.bogus: unknown key"),
])
def test_a_further_players_optimizer_errors_name_its_key(host, assignment, message):
    """Issue 25: ``optim.<player>`` errors name ``optim.<player>.<key>``, not ``optim.<key>``."""
    with pytest.raises(ConfigError) as info:
        resolve(host, {"variant": "dcgan"}, [assignment])
    assert str(info.value).startswith(message)


def test_list_items_are_addressed_by_index_or_by_name_in_every_command(host):
    """One --set dialect: the run config's keys, a named section of a list by its name as well as its
    index (also when the list comes from the variant's defaults)."""
    from gancore.config import build_raw, resolve

    by_name = resolve(host, build_raw("wgan"), ["variant.mode=gp", "regularizers.gradient-penalty.weight=5"])
    by_index = resolve(host, build_raw("wgan"), ["variant.mode=gp", "regularizers.0.weight=5"])
    assert by_name.to_dict() == by_index.to_dict() and by_name.regularizers[0][1].weight == 5
    with pytest.raises(ConfigError, match=r"regularizers.r1: .* the name of one item \(it has gradient-penalty\)"):
        resolve(host, build_raw("wgan"), ["variant.mode=gp", "regularizers.r1.weight=5"])
    metrics = resolve(host, build_raw("dcgan"), ['eval.metrics=[{"name": "kid"}]', "eval.metrics.kid.subsets=3"])
    assert metrics.eval_metrics[0][1].subsets == 3


def test_data_pack_takes_the_run_configs_data_keys(tmp_path):
    from click.testing import CliRunner

    from gancore.cli import cli

    bare = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(tmp_path / "d.pack"), "--set", "split=test"])
    assert bare.exit_code == 2 and "--set split: data pack takes the run config's data.* keys (e.g. --set data.split=" \
        in bare.output, bare.output
    named = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(tmp_path / "d.pack"),
                                     "--set", "data.name=x"])
    assert named.exit_code == 2 and "SOURCE names the source" in named.output
    assert not (tmp_path / "d.pack").exists()
