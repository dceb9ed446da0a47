"""The plugin contract an outside author relies on: players updated together, a critic of two
inputs, EMA of any player, capabilities per setting, and one-line errors that name the plugin when
its network or its preview fails."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gancore import (
    Batch,
    Capabilities,
    Critic,
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
from gancore.errors import PluginError
from gancore.testing import VariantContract, make_config, train, weights

TINY = {"train.steps": 4, "log.every": 1, "log.sample_every": 2, "log.checkpoint_every": 2, "log.progress": False,
        "log.scatter_points": 16}


class PointGenerator(Generator):
    latent_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z)


class JointCritic(Critic):
    """BiGAN's D(x, z): the second input arrives as ``y``."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        assert y is not None
        return self.net(torch.cat([x, y], 1)).squeeze(1)


class BiGANSettings(Settings):
    average_encoder: bool = True


class BiGAN(Variant):
    """Generator and encoder updated together against one critic of (x, z) pairs."""

    name = "test-bigan"
    Config = BiGANSettings

    @classmethod
    def defaults(cls, config: Settings) -> dict:
        return {"data": {"name": "gaussian-ring", "n_samples": 256}, "train": {"batch_size": 16},
                "optim": {"encoder": {"name": "adam", "lr": 1e-3}}}

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        assert isinstance(config, BiGANSettings)
        players = ("generator", "encoder") if config.average_encoder else ("generator",)
        return Capabilities(ema_players=players)

    def build(self) -> Networks:
        return Networks(generator=PointGenerator(), critic=JointCritic(), others={"encoder": nn.Linear(2, 2)})

    def phases(self, n_critic: int) -> list[Phase]:
        return [Phase("critic", self.critic_step, repeat=n_critic),
                Phase("generator", self.generator_step, with_players=("encoder",))]

    def _pairs(self, nets: Networks, batch: Batch, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        z = ctx.latent(nets.generator, len(batch.x))
        real = nets.critic(batch.x, nets.others["encoder"](batch.x))
        fake = nets.critic(nets.generator(z), z)
        return real, fake

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        real, fake = self._pairs(nets, batch, ctx)
        return StepOutput(terms={"adv": self.loss.critic_loss(real, fake)})

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        real, fake = self._pairs(nets, batch, ctx)
        return StepOutput(terms={"adv": self.loss.critic_loss(fake, real)})  # the roles swapped


class WideScores(BiGAN):
    """Scores [N, 1]: what the contract suite must catch."""

    name = "test-wide-scores"

    def build(self) -> Networks:
        nets = super().build()
        forward = nets.critic.forward
        nets.critic.forward = lambda x, y=None: forward(x, y).unsqueeze(1)  # type: ignore[method-assign]
        return nets


class MisShaped(BiGAN):
    """A critic whose first layer expects the wrong width: it raises on the first batch."""

    name = "test-misshaped"

    def build(self) -> Networks:
        nets = super().build()
        nets.critic.net[0] = nn.Linear(5, 16)
        return nets


class BrokenPreview(BiGAN):
    name = "test-broken-preview"

    def preview(self, generator, batch, n, *, rng, device):
        return batch.x[:8].reshape(8, 2), None  # assumes 8 inputs: the checkpoint's probe has 2


class NoPreview(BiGAN):
    name = "test-no-preview"

    def preview(self, generator, batch, n, *, rng, device):
        raise ValueError("this preview is not written yet")


class _Plugin:
    @hookimpl
    def gancore_register_variants(self) -> list[type]:
        return [BiGAN, WideScores, MisShaped, BrokenPreview, NoPreview]


@pytest.fixture
def host():
    return load_plugins(extra=[("test-contract", _Plugin())])


def test_players_updated_together_step_each_and_resume_exactly(host, tmp_path):
    cfg = make_config(host, "test-bigan", {**TINY, "train.ema": 0.9})
    fresh = cfg.variant_cls(cfg.variant, host.datasets.get("gaussian-ring")(cfg.data).load().spec,
                            cfg.loss_cls(cfg.loss))
    torch.manual_seed(cfg.train.seed)
    before = fresh.build().others["encoder"].weight.detach().clone()
    straight = train(host, cfg, tmp_path / "a")
    assert straight.state.updates == {"generator": 4, "critic": 4, "encoder": 4}
    assert not torch.equal(straight.built.nets.others["encoder"].weight.detach(), before)  # the encoder stepped
    assert all(p.requires_grad for _, net in straight.built.nets.items() for p in net.parameters())  # unfrozen
    assert set(straight.built.emas) == {"generator", "encoder"}
    records = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert "generator/adv" in records[-1] and not any(k.startswith("encoder/") for k in records[-1])
    train(host, make_config(host, "test-bigan", {**TINY, "train.ema": 0.9, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, cfg, tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert "ema_encoder.weight" in a and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    only_generator = train(host, make_config(host, "test-bigan", {**TINY, "train.ema": 0.9, "train.steps": 1,
                                                                  "variant.average_encoder": False}), tmp_path / "c")
    assert set(only_generator.built.emas) == {"generator"}  # a capability that depends on a setting


def test_a_phase_cannot_name_its_own_player_twice():
    with pytest.raises(ValueError, match="with_players"):
        Phase("generator", lambda *a: None, with_players=("generator",))
    with pytest.raises(ValueError, match="with_players"):
        Phase("generator", lambda *a: None, with_players="encoder")  # type: ignore[arg-type]


class TestBiGANContract(VariantContract):
    variant = "test-bigan"
    overrides = {"log.sample_every": 1, "log.scatter_points": 16}
    settings_cases = [{"variant.average_encoder": True}, {"variant.average_encoder": False}]

    @pytest.fixture
    def host(self):
        return load_plugins(extra=[("test-contract", _Plugin())])


def test_the_contract_suite_catches_scores_of_shape_n_by_1(host, tmp_path):
    class Wide(TestBiGANContract):
        variant = "test-wide-scores"

    with pytest.raises(AssertionError, match=r"scores must be \[N\], not \[N, 1\]"):
        Wide().test_critic_scores_are_one_per_sample(host, tmp_path)


def test_a_network_that_raises_on_its_first_batch_is_one_line_naming_the_plugin(host, tmp_path, monkeypatch):
    from gancore import app
    from gancore import cli as cli_module

    cfg = make_config(host, "test-misshaped", TINY)
    with pytest.raises(PluginError, match=r"variant 'test-misshaped': its critic step failed on the first batch "
                                          r"\(x \[16, 2\], y \[16\]\): RuntimeError: mat1 and mat2 shapes cannot "
                                          r"be multiplied"):
        train(host, cfg, tmp_path / "run")
    monkeypatch.setattr(app, "_host", host)
    result = CliRunner().invoke(cli_module.cli, ["run", "test-misshaped", "--out", str(tmp_path / "cli"),
                                                 "--set", "log.progress=false"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("gancore: error:")]
    assert len(lines) == 1 and "variant 'test-misshaped'" in lines[0] and "Traceback" not in result.output
    debug = CliRunner().invoke(cli_module.cli, ["--debug", "run", "test-misshaped", "--out", str(tmp_path / "dbg"),
                                                "--set", "log.progress=false"])
    assert isinstance(debug.exception, PluginError) and isinstance(debug.exception.__cause__, RuntimeError)


def test_a_preview_that_fails_on_the_probe_is_blamed_on_the_variant(host, tmp_path):
    lines: list[str] = []
    from gancore.kernel import Trainer

    cfg = make_config(host, "test-broken-preview", TINY)
    trainer = Trainer(host, cfg, tmp_path / "run", echo=lines.append)
    with pytest.raises(PluginError, match=r"variant 'test-broken-preview': preview\(\) failed: RuntimeError: .*"
                                          r"2-input probe batch before every checkpoint"):
        trainer.train()
    assert not list((tmp_path / "run" / "checkpoints").glob("*.safetensors"))
    assert not [line for line in lines if line.startswith("warning:")]  # its grids of 16 inputs were drawn

    lines.clear()
    trainer = Trainer(host, make_config(host, "test-no-preview", TINY), tmp_path / "none", echo=lines.append)
    with pytest.raises(PluginError, match=r"variant 'test-no-preview': preview\(\) failed: ValueError: this preview"):
        trainer.train()
    warnings = [line for line in lines if line.startswith("warning:")]  # the sample grid at step 2 failed first
    assert len(warnings) == 1, lines
    assert warnings[0].startswith("warning: variant 'test-no-preview': preview() failed: ValueError: this preview")
    assert "plugin 'gancore.sample-grids'" in warnings[0]
