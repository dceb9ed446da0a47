"""Gradient accumulation (``train.accumulate``) and the stylegan2-ada EMA (``train.ema_half_life_kimg``
with ``train.ema_rampup``): one update over k micro-batches equals one over the whole batch, and
both resume bitwise."""

from __future__ import annotations

import pytest
import torch

from gancore import Batch, Networks, StepContext, StepOutput, hookimpl
from gancore.app import load_plugins
from gancore.errors import ConfigError
from gancore.games import NoiseGame, standard_networks
from gancore.interfaces import NetworkWidths, PenaltyInput
from gancore.testing import make_config, train, weights

# fp32: the comparisons are to float32 tolerance (auto is bf16 on CPUs with bf16 units)
TINY = {"data.name": "gaussian-ring", "train.steps": 4, "train.batch_size": 16, "log.every": 1,
        "log.sample_every": 100, "log.checkpoint_every": 2, "log.progress": False, "log.scatter_points": 16,
        "train.precision": "fp32"}


class FixedNoise(NoiseGame):
    """A GAN on 2-D points whose noise is a function of the batch (no random draw), with MLPs
    (no batch statistics): the same batch gives the same update however it is cut."""

    name = "test-fixed-noise"
    Config = NetworkWidths

    def build(self) -> Networks:
        return standard_networks(self.data, latent_dim=2, generator_width=8, critic_width=8, critic_norm="none",
                                 mlp_hidden=16, mlp_layers=2)

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        with torch.no_grad():
            fake = g(batch.x.flip(1))
        real_out, fake_out = d(batch.x), d(fake)
        return StepOutput(terms={"adv": self.loss.critic_loss(real_out, fake_out)},
                          stats={"real": real_out.detach().mean()},
                          penalties=[PenaltyInput(critic=d, real=batch.x, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        return StepOutput(terms={"adv": self.loss.generator_loss(nets.critic(nets.generator(batch.x.flip(1))))})


class _Plugin:
    @hookimpl
    def gancore_register_variants(self) -> list[type]:
        return [FixedNoise]


@pytest.fixture
def host():
    return load_plugins(extra=[("test-accumulate", _Plugin())])


def test_accumulated_update_equals_the_whole_batch(host, tmp_path):
    """Four micro-batches of 4 with an R1 penalty on each give the update of one batch of 16."""
    base = {**TINY, "train.steps": 3, "train.seed": 5, "optim.critic.name": "sgd", "optim.generator.name": "sgd",
            "optim.critic.lr": 0.05, "optim.generator.lr": 0.05, "regularizers": [{"name": "r1", "weight": 2.0}]}
    whole = train(host, make_config(host, "test-fixed-noise", base), tmp_path / "whole")
    cut = train(host, make_config(host, "test-fixed-noise", {**base, "train.accumulate": 4}), tmp_path / "cut")
    a, b = weights(whole), weights(cut)
    start = weights(train(host, make_config(host, "test-fixed-noise", {**base, "train.steps": 1,
                                                                       "optim.critic.lr": 1e-12,
                                                                       "optim.generator.lr": 1e-12}),
                          tmp_path / "start"))
    assert a.keys() == b.keys()
    for key in a:
        assert not torch.allclose(a[key], start[key], atol=1e-5), f"{key} did not train"
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_accumulation_logs_the_batch_mean(host, tmp_path):
    import json

    base = {**TINY, "train.steps": 1, "regularizers": [{"name": "r1"}]}
    train(host, make_config(host, "test-fixed-noise", base), tmp_path / "whole")
    train(host, make_config(host, "test-fixed-noise", {**base, "train.accumulate": 8}), tmp_path / "cut")

    def logged(name: str) -> dict:
        return json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])

    whole, cut = logged("whole"), logged("cut")
    for key in ("critic/adv", "critic/r1", "critic/real", "generator/adv"):
        assert cut[key] == pytest.approx(whole[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("sets", [
    {"train.accumulate": 2, "train.ema": 0.9, "data.name": "digits"},
    {"train.ema_half_life_kimg": 0.05, "train.ema_rampup": 0.5},
], ids=["accumulate", "ema-rampup"])
def test_resume_is_bitwise(host, tmp_path, sets):
    cfg = make_config(host, "dcgan", {**TINY, **sets})
    straight = weights(train(host, cfg, tmp_path / "a"))
    train(host, make_config(host, "dcgan", {**TINY, **sets, "train.steps": 2}), tmp_path / "b")
    resumed = weights(train(host, cfg, tmp_path / "b", resume=True))
    assert straight.keys() == resumed.keys() and any(k.startswith("ema.") for k in straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_ema_decay_follows_stylegan2_ada(host):
    train_cfg = make_config(host, "dcgan", {"train.ema_half_life_kimg": 10.0, "train.ema_rampup": 0.05}).train
    # the half-life grows with the images seen (5% of them), up to 10k images
    assert train_cfg.ema_decay(0, 64) == pytest.approx(0.5 ** (64 / (64 * 0.05)))
    assert train_cfg.ema_decay(999, 64) == pytest.approx(0.5 ** (64 / (1000 * 64 * 0.05)))
    assert train_cfg.ema_decay(10**6, 64) == pytest.approx(0.5 ** (64 / 10_000))
    flat = make_config(host, "dcgan", {"train.ema_half_life_kimg": 10.0}).train
    assert flat.ema_decay(0, 64) == pytest.approx(0.5 ** (64 / 10_000))
    assert make_config(host, "dcgan", {"train.ema": 0.99}).train.ema_decay(5, 64) == 0.99


def test_ema_of_every_player_that_asks_follows_the_half_life(host, tmp_path):
    """The EMA applies the same decay as train.ema would, to each averaged player, buffers copied."""
    from gancore.kernel.build import ema_update

    cfg = make_config(host, "dcgan", {**TINY, "data.name": "digits", "train.steps": 1,
                                      "train.ema_half_life_kimg": 0.02})
    trainer = train(host, cfg, tmp_path / "r")
    assert set(trainer.built.emas) == {"generator"}
    g, ema = trainer.built.nets.generator, trainer.built.ema
    # BatchNorm buffers are copied from the generator
    for mine, theirs in zip(ema.buffers(), g.buffers(), strict=True):
        assert torch.equal(mine, theirs)
    decay = cfg.train.ema_decay(0, 16)
    assert 0.0 < decay < 1.0
    copy = {k: v.clone() for k, v in ema.state_dict().items()}
    ema_update(ema, g, decay)
    assert not all(torch.equal(copy[k], v) for k, v in ema.state_dict().items())


@pytest.mark.parametrize(("sets", "message"), [
    ({"train.ema": 0.9, "train.ema_half_life_kimg": 1.0}, "train: ema and ema_half_life_kimg are both set"),
    ({"train.ema_rampup": 0.05}, "train: ema_rampup needs ema_half_life_kimg"),
    ({"train.accumulate": 3}, "train: accumulate = 3 does not divide batch_size 64"),
    ({"train.accumulate": 0}, "train.accumulate: Input should be greater than or equal to 1"),
])
def test_settings_errors_are_one_line(host, sets, message):
    with pytest.raises(ConfigError) as err:
        make_config(host, "dcgan", sets)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
