"""Variant presets: every shipped preset resolves and builds; layering; CLI errors; a real run."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, preset_settings, resolve
from gancore.errors import ConfigError
from gancore.interfaces import DataSpec
from gancore.kernel.build import build_run

HOST = load_plugins()
PRESETS = [(name, preset) for name in HOST.variants.names() for preset in HOST.variants.get(name).presets]


def test_every_builtin_variant_ships_a_gpu_preset():
    assert {("cyclegan", "gpu"), ("cyclegan", "paper"), ("siamese", "gpu"), ("siamese", "gpu-translate"),
            ("dcgan", "gpu"), ("wgan", "gpu"), ("cgan", "gpu")} <= set(PRESETS)


@pytest.mark.parametrize("variant, preset", PRESETS)
def test_every_preset_resolves_and_its_networks_run_at_its_size(variant, preset):
    p = HOST.variants.get(variant).presets[preset]
    assert p.doc and p.settings
    cfg = resolve(HOST, build_raw(variant, preset=preset_settings(HOST, variant, preset)))
    resolved = cfg.to_dict()
    for key, value in p.settings.items():
        section, field = key.split(".", 1)
        assert resolved[section][field] == value, key
    size = cfg.data.image_size
    paired = cfg.data_cls.name in ("digits-restore", "paired")
    two = paired or cfg.data_cls.name in ("digits-pair", "unpaired")
    spec = DataSpec(kind="image", shape=(1, size, size), num_classes=10, domains=2 if two else 1, paired=paired)
    model = build_run(cfg, spec, torch.device("cpu"))
    g, d = model.nets.generator, model.nets.critic
    for _, net in model.nets.items():
        net.eval()  # one sample: BatchNorm1d (InfoGAN's FC layers) needs more than one in training mode
    x = torch.zeros(1, 1, size, size)
    labels = torch.zeros(1, dtype=torch.long) if cfg.variant_cls.conditional else None
    with torch.no_grad():
        if two:
            fake = model.variant.translate(g, x, "a2b")
            critic = d["b"] if isinstance(d, torch.nn.ModuleDict) else d
        else:
            fake = model.variant.sample(g, 1, rng=torch.Generator().manual_seed(0), device=torch.device("cpu"),
                                        labels=labels)
            critic = d
        assert fake.shape == (1, 1, size, size)
        if critic is None:  # the plain VAE
            return
        out = critic(torch.cat([x, fake], 1) if paired else fake, labels)  # pix2pix's critic sees the pair
        scores = out[0] if isinstance(out, tuple) else out  # the cGAN's critics return (scores, class logits)
        assert torch.isfinite(scores).all()


def test_config_file_and_set_go_over_the_preset(tmp_path):
    chosen = preset_settings(HOST, "cyclegan", "gpu")
    cfg = resolve(HOST, build_raw("cyclegan", preset=chosen), ["train.steps=7"])
    assert cfg.train.steps == 7 and cfg.data.image_size == 128 and cfg.variant.residual_blocks == 6
    path = tmp_path / "c.toml"
    path.write_text("[data]\nimage_size = 64\n")
    cfg = resolve(HOST, build_raw("cyclegan", path, preset=chosen))
    assert cfg.data.image_size == 64 and cfg.variant.cycle_weight == 10
    # a preset's size survives a change of data source
    cfg = resolve(HOST, build_raw("cyclegan", preset=chosen), ["data.name=digits-pair", "data.b_style=rotate"])
    assert cfg.data.image_size == 128


def test_unknown_presets_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"--preset: cyclegan has no preset 'nope' \(its presets: gpu, paper\)"):
        preset_settings(HOST, "cyclegan", "nope")
    with pytest.raises(ConfigError, match=r"dcgan has no preset 'paper' \(its presets: gpu\)"):
        preset_settings(HOST, "dcgan", "paper")
    result = CliRunner().invoke(cli, ["run", "cyclegan", "--preset", "nope", "--dry-run"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "its presets: gpu, paper" in result.output


def test_config_lists_presets_and_shows_one_applied():
    runner = CliRunner()
    result = runner.invoke(cli, ["config", "cyclegan"])
    assert result.exit_code == 0 and "#   gpu: 128x128" in result.output and "#   paper:" in result.output
    result = runner.invoke(cli, ["config", "siamese", "--preset", "gpu-translate", "--json"])
    cfg = json.loads(result.output)
    assert cfg["variant"]["mode"] == "translate" and cfg["variant"]["unet_depth"] == 7
    assert cfg["data"]["name"] == "digits-pair" and cfg["data"]["image_size"] == 128


def test_a_preset_run_trains_and_records_its_settings(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "cyclegan", "--preset", "gpu", "--out", str(out),
                                      "--set", "train.steps=1", "--set", "train.batch_size=1",
                                      "--set", "log.progress=false", "--set", "log.samples=2"])
    assert result.exit_code == 0, result.output
    assert "preset gpu: data.image_size=128" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["data"]["image_size"] == 128 and saved["variant"]["residual_blocks"] == 6
    assert list((out / "checkpoints").glob("step_*.safetensors"))
