"""The kernel's parts: the training state and its checkpoint schema (old files still load), phases as
data (a model without a critic, a third player), and the run directory appearing only once built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gancore import (
    Batch,
    ConfigError,
    Critic,
    DataSpec,
    Generator,
    Networks,
    Phase,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    hookimpl,
)
from gancore.app import load_plugins
from gancore.inference import generate, load_model, translate_images
from gancore.testing import SMALL, make_config, train, weights

FIXTURES = Path(__file__).parent / "fixtures"


# -- checkpoints written before the kernel split ------------------------------------------------


def test_a_checkpoint_written_before_the_split_samples_the_same():
    x, used = generate(load_plugins(), FIXTURES / "v1_dcgan_step2.safetensors", n=4, seed=3)
    assert used == "ema"
    assert torch.equal(x, load_file(str(FIXTURES / "v1_dcgan_step2_samples.safetensors"))["samples"])


def test_a_cyclegan_checkpoint_written_before_the_split_translates_the_same():
    built, _ = load_model(load_plugins(), FIXTURES / "v1_cyclegan_step2.safetensors")
    expected = load_file(str(FIXTURES / "v1_cyclegan_step2_translations.safetensors"))
    for direction in ("a2b", "b2a"):
        assert torch.equal(translate_images(built, expected["input"], direction), expected[direction])


def test_a_checkpoint_written_before_the_split_resumes_to_the_same_step(tmp_path):
    from gancore.kernel.checkpoint import read_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "v1_dcgan_step2.safetensors", run / "checkpoints" / "step_0000002.safetensors")
    config = read_checkpoint(run / "checkpoints" / "step_0000002.safetensors").config
    (run / "config.json").write_text(json.dumps(config))
    host = load_plugins()
    config["train"]["steps"] = 3
    from gancore.config import resolve

    trainer = train(host, resolve(host, config), run, resume=True)
    assert trainer.step == 3 and trainer.state.updates == {"critic": 3, "generator": 3}
    expected = load_file(str(FIXTURES / "v1_dcgan_resumed_step3.safetensors"))
    got = weights(trainer)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_the_state_writes_updates_per_player(tmp_path, host):
    from gancore.kernel.checkpoint import read_checkpoint

    trainer = train(host, make_config(host, "wgan", {**SMALL, "train.steps": 2}), tmp_path / "run")
    ckpt = read_checkpoint(trainer.last_checkpoint)
    assert ckpt.json("updates") == {"critic": 10, "generator": 2}  # n_critic 5
    assert ckpt.metadata["critic_steps"] == "10"


def test_data_spec_round_trips_and_rejects_junk():
    spec = DataSpec(kind="image", shape=(3, 16, 16), num_classes=10, domains=2)
    assert DataSpec.from_json(spec.to_json()) == spec
    for junk in ("[]", "{}", '{"kind": "image", "shape": "x"}', '{"kind": "sound", "shape": [3]}', "not json"):
        with pytest.raises(ValueError, match="data_spec"):
            DataSpec.from_json(junk)


# -- phases as data ------------------------------------------------------------------------------


class TinyAutoencoder(Generator):
    """Encodes 2-D points to one number and back; ``forward(z)`` decodes noise."""

    latent_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(2, 1)
        self.decoder = nn.Linear(1, 2)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z)


class Autoencoder(Variant):
    """A model with no critic: one phase, the generator's."""

    name = "test-autoencoder"

    @classmethod
    def defaults(cls, config: Settings) -> dict:
        return {"data": {"name": "gaussian-ring", "n_samples": 256}, "train": {"batch_size": 16}}

    def build(self) -> Networks:
        return Networks(generator=TinyAutoencoder())

    def phases(self, n_critic: int) -> list[Phase]:
        return [Phase("generator", self.reconstruct)]

    def reconstruct(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        ae = nets.generator
        noise = 0.01 * torch.randn(batch.x.shape, generator=ctx.rng)
        return StepOutput(terms={"reconstruction": (ae(ae.encoder(batch.x + noise)) - batch.x).pow(2).mean()})


class Scorer(Critic):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)


class PointGenerator(Generator):
    latent_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 2)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class WithHelper(Variant):
    """A GAN with a third player, ``q``, that recovers z from G(z) (InfoGAN-style) on every
    second iteration, with its own optimizer."""

    name = "test-three-players"

    @classmethod
    def defaults(cls, config: Settings) -> dict:
        return {"data": {"name": "gaussian-ring", "n_samples": 256}, "train": {"batch_size": 16},
                "optim": {"q": {"name": "adam", "lr": 1e-3}}}

    def build(self) -> Networks:
        return Networks(generator=PointGenerator(), critic=Scorer(), others={"q": nn.Linear(2, 2)})

    def phases(self, n_critic: int) -> list[Phase]:
        return [*super().phases(n_critic), Phase("q", self.q_step, every=2)]

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        with torch.no_grad():
            fake = nets.generator(ctx.latent(nets.generator, len(batch.x)))
        return StepOutput(terms={"adv": self.loss.critic_loss(nets.critic(batch.x), nets.critic(fake))})

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        fake = nets.generator(ctx.latent(nets.generator, len(batch.x)))
        return StepOutput(terms={"adv": self.loss.generator_loss(nets.critic(fake))})

    def q_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        z = ctx.latent(nets.generator, len(batch.x))
        with torch.no_grad():
            fake = nets.generator(z)
        return StepOutput(terms={"info": (nets.others["q"](fake) - z).pow(2).mean()})


class BrokenBuild(Variant):
    name = "test-broken-build"

    def build(self) -> Networks:
        raise ConfigError("variant.width: too small for this data")


class _Variants:
    @hookimpl
    def gancore_register_variants(self) -> list[type]:
        return [Autoencoder, WithHelper, BrokenBuild]


@pytest.fixture
def phased():
    return load_plugins(extra=[("test-phases", _Variants())])


TINY = {"train.steps": 4, "log.every": 1, "log.sample_every": 2, "log.checkpoint_every": 2, "log.progress": False,
        "log.scatter_points": 16}


def test_a_model_without_a_critic_trains_resumes_and_samples(phased, tmp_path):
    cfg = make_config(phased, "test-autoencoder", TINY)
    straight = train(phased, cfg, tmp_path / "a")
    assert set(straight.updaters) == {"generator"} and straight.built.nets.critic is None
    records = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert all("generator/reconstruction" in r and not any(k.startswith("critic/") for k in r) for r in records)
    train(phased, make_config(phased, "test-autoencoder", {**TINY, "train.steps": 2}), tmp_path / "b")
    resumed = train(phased, cfg, tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and not any(k.startswith("critic.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    x, _ = generate(phased, tmp_path / "a", n=5)
    assert x.shape == (5, 2)


def test_a_regularizer_on_a_model_without_a_critic_is_a_config_error(phased, tmp_path):
    cfg = make_config(phased, "test-autoencoder", {**TINY, "regularizers": [{"name": "gradient-penalty"}]})
    with pytest.raises(ConfigError, match="regularizers: gradient-penalty act on a critic"):
        train(phased, cfg, tmp_path / "run")


def test_a_third_player_has_its_own_optimizer_interval_and_checkpoint_keys(phased, tmp_path):
    from gancore.kernel.checkpoint import read_checkpoint

    cfg = make_config(phased, "test-three-players", TINY)
    straight = train(phased, cfg, tmp_path / "a")
    assert straight.state.updates == {"generator": 4, "critic": 4, "q": 2}  # q on every 2nd iteration
    assert straight.state.optimizers["q"].param_groups[0]["lr"] == 1e-3
    ckpt = read_checkpoint(straight.last_checkpoint)
    assert ckpt.has("q") and any(k.startswith("optim.q.") for k in ckpt.tensors)
    train(phased, make_config(phased, "test-three-players", {**TINY, "train.steps": 2}), tmp_path / "b")
    resumed = train(phased, cfg, tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert "q.weight" in a and all(torch.equal(a[k], b[k]) for k in a)


def test_a_third_player_without_optimizer_settings_is_a_config_error(phased, tmp_path):
    from gancore.config import build_raw, resolve

    raw = build_raw("test-three-players")
    cfg = resolve(phased, raw, ["optim.q.lr=1e-3"])
    cfg.optim = type(cfg.optim).model_validate({"generator": {}, "critic": {}})
    with pytest.raises(ConfigError, match=r"optim\.q: the variant trains a network 'q'"):
        train(phased, cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="optim.generatr: variant 'test-three-players' has no player"):
        train(phased, make_config(phased, "test-three-players", {**TINY, "optim.generatr.lr": 1e-3}), tmp_path / "x")


def test_a_build_error_leaves_no_run_directory(phased, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gancore import app
    from gancore import cli as cli_module

    monkeypatch.setattr(app, "_host", phased)
    result = CliRunner().invoke(cli_module.cli, ["run", "test-broken-build", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "variant.width: too small" in result.output
    assert not (tmp_path / "run").exists()


def test_a_pairing_of_variant_and_loss_that_cannot_work_is_refused_at_resolve(phased):
    from gancore import Capabilities
    from gancore.config import build_raw, resolve

    class NoRealSettings(Settings):
        real_in_generator_step: bool = False

    class NoReal(Autoencoder):
        """Whether its generator step scores a real batch is a setting: so is the capability."""

        name = "test-no-real"
        Config = NoRealSettings

        @classmethod
        def capabilities(cls, config: Settings) -> Capabilities:
            assert isinstance(config, NoRealSettings)
            return Capabilities(generator_loss_gets_real=config.real_in_generator_step)

    phased.variants.add(NoReal, "test")
    with pytest.raises(ConfigError, match="loss.name: the contrastive loss needs the critic's outputs"):
        resolve(phased, build_raw("test-no-real"), ["loss.name=contrastive"])
    cfg = resolve(phased, build_raw("test-no-real"), ["loss.name=contrastive", "variant.real_in_generator_step=true"])
    assert cfg.loss_cls.name == "contrastive"


def test_cyclegan_trains_with_a_loss_that_needs_real_outputs(tmp_path):
    from click.testing import CliRunner

    from gancore.cli import cli

    result = CliRunner().invoke(cli, ["run", "cyclegan", "--out", str(tmp_path / "run"),
                                      "--set", "loss.name=contrastive", "--set", "train.steps=2",
                                      "--set", "data.image_size=16",
                                      "--set", "log.progress=false", "--set", "variant.orient=off"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert "generator/adv_a2b" in record
