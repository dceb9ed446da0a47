"""One generator forward per iteration (issue 30, item 3): ``variant.reuse_fake`` has the generator's
phase score the batch the critic's last step generated, through the graph that step kept
(``Phase.keep_graph``, ``StepContext.carry``), as pytorch/examples' DCGAN loop does. The update is the
one a fresh forward of the same noise gives, the kept graph is built on the last critic repeat only,
nothing is left over between iterations, and a resumed run continues bitwise."""

from __future__ import annotations

import pytest
import torch

from gancore import Batch, Networks, StepContext, StepOutput, hookimpl
from gancore.app import load_plugins
from gancore.errors import ConfigError
from gancore.games import NoiseGame, NoiseGameSettings, standard_networks
from gancore.kernel import Trainer
from gancore.kernel.build import check_against_variant
from gancore.testing import SMALL, make_config, quiet, train, weights
from gancore.variant import CRITIC, Phase

# fp32: the comparisons are bitwise or to float32 tolerance (auto is bf16 on CPUs with bf16 units)
TINY = {**SMALL, "variant.generator_width": 8, "variant.critic_width": 8, "train.precision": "fp32",
        "train.steps": 3, "log.checkpoint_every": 2, "log.progress": False}


class Replay(NoiseGame):
    """DCGAN's networks. With ``reuse_fake`` the noise game's own steps; without it, a generator phase
    that runs the generator again on the noise the critic's phase drew (left in ``ctx.carry``): the
    update ``reuse_fake`` must give without that second forward."""

    name = "test-replay"
    Config = NoiseGameSettings

    def build(self) -> Networks:
        return standard_networks(self.data, latent_dim=None, generator_width=8, critic_width=8, critic_norm="batch",
                                 mlp_hidden=16, mlp_layers=2)

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        if self.reuse_fake:
            return super().critic_step(nets, batch, ctx)
        g, d = nets.generator, nets.critic
        z = ctx.latent(g, batch.x.shape[0])
        ctx.carry["z"] = z
        with torch.no_grad():
            fake = g(z)
        return StepOutput(terms={"adv": self.loss.critic_loss(d(batch.x), d(fake))})

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        if self.reuse_fake:
            return super().generator_step(nets, batch, ctx)
        return StepOutput(terms={"adv": self.loss.generator_loss(nets.critic(nets.generator(ctx.carry["z"])))})


class _Plugin:
    @hookimpl
    def gancore_register_variants(self) -> list[type]:
        return [Replay]


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra=[("test-reuse", _Plugin())])


def forwards(trainer: Trainer) -> list[bool]:
    """Records, for each training forward of the generator from now on, whether its output carries a
    graph (the probe before a checkpoint runs in eval mode)."""
    seen: list[bool] = []
    trainer.built.nets.generator.register_forward_hook(
        lambda m, i, out: seen.append(out.requires_grad) if m.training else None)
    return seen


@pytest.mark.parametrize(("variant", "sets", "expected"), [
    ("dcgan", {}, [True]),
    ("wgan", {"train.n_critic": 3}, [False, False, True]),  # the graph on the critic's last repeat only
    ("dcgan", {"train.accumulate": 2}, [True, True]),  # one kept batch per micro-batch
], ids=["dcgan", "wgan-n_critic-3", "accumulate-2"])
def test_one_generator_forward_per_iteration(host, tmp_path, variant, sets, expected):
    def run(reuse: bool) -> list[bool]:
        cfg = make_config(host, variant, {**TINY, **sets, "variant.reuse_fake": reuse})
        trainer = Trainer(host, cfg, tmp_path / f"{variant}-{reuse}", echo=quiet)
        seen = forwards(trainer)
        trainer.advance(2)
        assert trainer.runner._carries == [] or all(not c for c in trainer.runner._carries)
        return seen

    assert run(True) == expected * 2
    assert len(run(False)) == (len(expected) + (2 if sets.get("train.accumulate") else 1)) * 2


def test_the_update_is_that_of_a_fresh_forward_of_the_same_noise(host, tmp_path):
    """The kept graph gives the generator the gradient a second forward of the critic phase's noise
    gives (the critic updated in between in both): the parameters agree after 3 iterations."""
    base = {**TINY, "data.name": "digits", "train.seed": 3}
    kept = weights(train(host, make_config(host, "test-replay", {**base, "variant.reuse_fake": True}), tmp_path / "a"))
    fresh = weights(train(host, make_config(host, "test-replay", base), tmp_path / "b"))
    start = weights(train(host, make_config(host, "test-replay", {**base, "train.steps": 1, "optim.generator.lr": 1e-12,
                                                                   "optim.critic.lr": 1e-12}), tmp_path / "c"))
    params = [k for k in kept if k.startswith("generator.") and "running" not in k and "num_batches" not in k]
    assert params
    for key in params:  # BatchNorm's running statistics differ: the replay ran the generator twice
        assert not torch.allclose(kept[key], start[key]), f"{key} did not train"
        torch.testing.assert_close(kept[key], fresh[key], rtol=1e-5, atol=1e-6, msg=key)


def test_phases_keep_the_graph_only_with_the_setting(host, tmp_path):
    """Without reuse_fake the noise game's generator phase draws its own batch (its old schedule)."""
    cfg = make_config(host, "dcgan", TINY)
    trainer = Trainer(host, cfg, tmp_path / "r", echo=quiet)
    assert [p.keep_graph for p in trainer.phases] == [(), ()]
    cfg = make_config(host, "dcgan", {**TINY, "variant.reuse_fake": True})
    trainer = Trainer(host, cfg, tmp_path / "k", echo=quiet)
    assert [p.keep_graph for p in trainer.phases] == [("generator",), ()]


def test_resume_is_bitwise(host, tmp_path):
    sets = {**TINY, "train.steps": 4, "variant.reuse_fake": True, "train.ema": 0.9}
    straight = weights(train(host, make_config(host, "dcgan", sets), tmp_path / "a"))
    train(host, make_config(host, "dcgan", {**sets, "train.steps": 2}), tmp_path / "b")
    resumed = weights(train(host, make_config(host, "dcgan", sets), tmp_path / "b", resume=True))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_distributed_run_refuses_a_kept_graph(host, tmp_path):
    cfg = make_config(host, "dcgan", {**TINY, "variant.reuse_fake": True})
    trainer = Trainer(host, cfg, tmp_path / "d", echo=quiet)
    with pytest.raises(ConfigError, match=r"keeps a graph through generator .*one process only"):
        check_against_variant(cfg, trainer.built, trainer.phases, distributed=True)


def test_phase_refuses_keeping_its_own_players():
    step = lambda nets, batch, ctx: None  # noqa: E731
    with pytest.raises(ValueError, match="keep_graph"):
        Phase(CRITIC, step, keep_graph=(CRITIC,))
    with pytest.raises(ValueError, match="keep_graph"):
        Phase(CRITIC, step, keep_graph="generator")
