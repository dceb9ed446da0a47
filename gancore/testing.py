"""Test helpers for plugin authors (public API; needs pytest).

Subclass :class:`VariantContract` in your plugin's tests and every variant gets the same
checks for free: it is registered, its default config resolves and round-trips, its schema
rejects unknown keys, it trains for a step on the CPU, samples have the data's shape, and
checkpoints round-trip and resume exactly::

    from gancore.testing import VariantContract

    class TestMyGAN(VariantContract):
        variant = "mygan"
        overrides = {"variant.width": 8}   # make the contract runs small and fast
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from gancore.app import load_plugins
from gancore.config import RunConfig, build_raw, resolve
from gancore.errors import ConfigError
from gancore.inference import generate, load_model
from gancore.kernel import Trainer
from gancore.kernel.checkpoint import find_checkpoint, read_checkpoint
from gancore.kernel.state import network_sections
from gancore.plugins import PluginHost

#: Settings that make any variant's contract run small: tiny images, tiny batches.
__all__ = ["SMALL", "VariantContract", "built", "make_config", "quiet", "train", "weights"]

SMALL: dict[str, Any] = {
    "data.image_size": 16,
    "train.batch_size": 8,
    "train.steps": 2,
    "log.every": 1,
    "log.sample_every": 0,
    "log.checkpoint_every": 0,
    "log.progress": False,
    "log.samples": 4,
}


def quiet(_: str) -> None:
    """An ``echo`` for :class:`Trainer` that prints nothing."""


def make_config(host: PluginHost, variant: str, overrides: dict[str, Any]) -> RunConfig:
    """Resolve ``variant``'s config with dotted ``overrides`` applied in order."""
    sets = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    return resolve(host, build_raw(variant), sets)


def built(host: PluginHost, variant: str, overrides: dict[str, Any]) -> Any:
    """``variant``'s networks built on the CPU for ``overrides`` (its data loaded for the spec), as
    :class:`gancore.kernel.build.BuiltRun`: call its ``variant``'s steps on ``nets`` directly."""
    from gancore.kernel.build import build_run

    cfg = make_config(host, variant, overrides)
    return build_run(cfg, cfg.data_cls(cfg.data).load().spec, torch.device("cpu"))


def train(host: PluginHost, cfg: RunConfig, run_dir: Path, *, resume: bool = False) -> Trainer:
    """Run a :class:`Trainer` to the end of ``cfg.train.steps`` and return it."""
    trainer = Trainer(host, cfg, run_dir, resume=resume, echo=quiet)
    trainer.train()
    return trainer


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor of every player's network and the EMA, keyed like the checkpoint."""
    return {f"{prefix}.{k}": v.detach().clone()
            for prefix, module in network_sections(trainer.built).items()
            for k, v in module.state_dict().items()}


def _top_critics(critic: torch.nn.Module) -> list[torch.nn.Module]:
    """The outermost :class:`~gancore.Critic` modules of a player's network (itself, or each
    critic a container holds, as CycleGAN's two)."""
    from gancore.modules import Critic

    if isinstance(critic, Critic):
        return [critic]
    return [m for m in critic.children() if isinstance(m, Critic)] or [
        m for child in critic.children() for m in _top_critics(child)]


def _score_problem(inputs: tuple[Any, ...], output: Any) -> str | None:
    """What is wrong with one critic output: scores are ``[N]`` (or ``[N, D]`` embeddings, ``[N, 1,
    h, w]`` patches), never ``[N, 1]``, and always one row per input sample."""
    scores = output if isinstance(output, torch.Tensor) else getattr(output, "scores", None)
    if not isinstance(scores, torch.Tensor) or not inputs or not isinstance(inputs[0], torch.Tensor):
        return None
    n = inputs[0].shape[0]
    shape = list(scores.shape)
    if not shape or shape[0] != n:
        return f"{shape} for {n} inputs (expected [N] scores, one per sample)"
    if shape[1:] == [1]:
        return f"{shape}: scores must be [N], not [N, 1] (squeeze the last dimension)"
    return None


class VariantContract:
    """The checks every variant plugin must pass. Set ``variant`` (and ``overrides``).

    ``settings_cases`` lists variant settings (dotted keys) the capability checks run under, one
    case each: a capability that depends on a setting (:meth:`gancore.Variant.capabilities`) is
    checked for every case listed, e.g. ``[{"variant.mode": "clip"}, {"variant.mode": "gp"}]``.
    """

    variant: ClassVar[str]
    overrides: ClassVar[dict[str, Any]] = {}
    settings_cases: ClassVar[list[dict[str, Any]]] = [{}]

    @pytest.fixture
    def host(self) -> Iterator[PluginHost]:
        yield load_plugins()

    def config(self, host: PluginHost, **extra: Any) -> RunConfig:
        small = dict(SMALL)
        if resolve(host, build_raw(self.variant)).data_kind != "image":
            small.pop("data.image_size")  # vector data has no image size
        return make_config(host, self.variant, {**small, **self.overrides, **extra})

    def test_registered(self, host: PluginHost) -> None:
        assert self.variant in host.variants
        record = next(r for r in host.records if self.variant in r.provides.get("variants", []))
        assert record.status == "ok"

    def test_default_config_resolves_and_round_trips(self, host: PluginHost) -> None:
        cfg = resolve(host, build_raw(self.variant))
        again = resolve(host, json.loads(json.dumps(cfg.to_dict())))
        assert again.to_dict() == cfg.to_dict()

    def test_schema_rejects_unknown_key(self, host: PluginHost) -> None:
        with pytest.raises(ConfigError, match=r"variant\.no_such_setting: unknown key"):
            resolve(host, build_raw(self.variant), ["variant.no_such_setting=1"])

    def test_trains_and_samples(self, host: PluginHost, tmp_path: Path) -> None:
        cfg = self.config(host)
        trainer = train(host, cfg, tmp_path / "run")
        assert trainer.step == cfg.train.steps
        records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
        assert records and all(
            torch.isfinite(torch.tensor(v)) for r in records for v in r.values()
        )
        for player in {phase.player for phase in trainer.phases}:  # players updated together log as one
            assert any(k.startswith(f"{player}/") for k in records[-1]), player
        assert list((tmp_path / "run" / "samples").glob("step_*.png"))
        x, _ = generate(host, tmp_path / "run", n=3, seed=1)
        assert tuple(x.shape) == (3, *trainer.spec.shape)
        assert torch.isfinite(x).all()
        y, _ = generate(host, tmp_path / "run", n=3, seed=1)
        assert torch.equal(x, y)  # --seed makes sampling repeatable

    def test_checkpoint_round_trip(self, host: PluginHost, tmp_path: Path) -> None:
        trainer = train(host, self.config(host), tmp_path / "run")
        model, ckpt = load_model(host, tmp_path / "run")
        assert ckpt.step == trainer.step
        for k, v in model.nets.generator.state_dict().items():
            assert torch.equal(v, trainer.built.nets.generator.state_dict()[k].cpu()), k
        assert read_checkpoint(find_checkpoint(tmp_path / "run")).config == trainer.cfg.to_dict()

    def test_resume_is_exact(self, host: PluginHost, tmp_path: Path) -> None:
        straight = train(host, self.config(host, **{"train.steps": 4}), tmp_path / "a")
        train(host, self.config(host, **{"train.steps": 2}), tmp_path / "b")
        resumed = train(host, self.config(host, **{"train.steps": 4}), tmp_path / "b", resume=True)
        a, b = weights(straight), weights(resumed)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{k} differs after resume"

    def test_critic_scores_are_one_per_sample(self, host: PluginHost, tmp_path: Path) -> None:
        """Every output of the critic's networks in a training step has one row per input, and a
        score per sample is ``[N]``: ``[N, 1]`` would broadcast against ``[N]`` targets silently."""
        cfg = self.config(host, **{"train.steps": 1})
        trainer = Trainer(host, cfg, tmp_path / "run", echo=quiet)
        critic = trainer.built.nets.critic
        if critic is None:
            pytest.skip(f"variant {self.variant!r} has no critic")
        problems: list[str] = []
        handles = [m.register_forward_hook(
            lambda module, inputs, output: problems.append(f"{type(module).__name__} returned {p}")
            if (p := _score_problem(inputs, output)) else None) for m in _top_critics(critic)]
        try:
            trainer.train()
        finally:
            for handle in handles:
                handle.remove()
        assert not problems, "; ".join(sorted(set(problems)))

    def test_losses_that_need_real_outputs(self, host: PluginHost, tmp_path: Path) -> None:
        """A loss whose generator side needs the critic's outputs on a real batch trains where the
        variant's :meth:`~gancore.Variant.capabilities` say ``generator_loss_gets_real`` (the
        default) and is a config error otherwise, in every one of ``settings_cases``."""
        cls = host.variants.get(self.variant)
        needs_real = [name for name in host.losses if host.losses.get(name).generator_uses_real]
        assert needs_real, "no installed loss has generator_uses_real"
        for i, case in enumerate(self.settings_cases):
            gets_real = cls.capabilities(self.config(host, **case).variant).generator_loss_gets_real
            for loss in needs_real:
                if not gets_real:
                    with pytest.raises(ConfigError, match="loss.name"):
                        self.config(host, **{**case, "loss.name": loss})
                    continue
                trainer = train(host, self.config(host, **{**case, "loss.name": loss, "train.steps": 1}),
                                tmp_path / f"{i}-{loss}")
                assert trainer.step == 1

    def test_ema_of_every_player_it_names(self, host: PluginHost, tmp_path: Path) -> None:
        """With ``train.ema`` set, each player the capabilities name in ``ema_players`` keeps an
        average that is checkpointed and resumed exactly."""
        for i, case in enumerate(self.settings_cases):
            extra = {**case, "train.ema": 0.5}
            cfg = self.config(host, **extra, **{"train.steps": 2})
            players = cfg.variant_cls.capabilities(cfg.variant).ema_players
            straight = train(host, cfg, tmp_path / f"{i}a")
            assert set(straight.built.emas) == set(players)
            ckpt = read_checkpoint(find_checkpoint(tmp_path / f"{i}a"))
            for player in players:
                prefix = "ema" if player == "generator" else f"ema_{player}"
                assert ckpt.has(prefix), f"{prefix} not in the checkpoint"
            train(host, self.config(host, **extra, **{"train.steps": 1}), tmp_path / f"{i}b")
            resumed = train(host, cfg, tmp_path / f"{i}b", resume=True)
            a, b = weights(straight), weights(resumed)
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
