"""Learning-rate schedules per player: constant, linear and cosine, each with an optional linear
warm-up; set by the kernel every step, logged as ``<player>/lr``, exact on resume."""

from __future__ import annotations

import json
import math

import pytest

from gancore.app import load_plugins
from gancore.errors import ConfigError
from gancore.sections import OptimizerSettings
from gancore.testing import SMALL, make_config, train, weights


def test_warmup_then_cosine_reaches_zero_at_the_last_step():
    s = OptimizerSettings(lr=1.0, schedule="cosine", warmup_steps=4)
    assert [s.lr_at(i, 20) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s.lr_at(4, 20) == 1.0
    assert s.lr_at(12, 20) == pytest.approx(0.5)  # half-way through the decay
    assert s.lr_at(20, 20) == pytest.approx(0.0, abs=1e-12)
    values = [s.lr_at(i, 20) for i in range(4, 21)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))  # monotone after the warm-up


def test_linear_decay_keeps_working_and_a_warmup_fits_before_it():
    linear = OptimizerSettings(lr=2.0, schedule="linear", decay_start=0.5)
    assert linear.lr_at(0, 10) == 2.0 and linear.lr_at(5, 10) == 2.0 and linear.lr_at(8, 10) == pytest.approx(0.8)
    warm = OptimizerSettings(lr=2.0, schedule="constant", warmup_steps=2)
    assert warm.scheduled and [warm.lr_at(i, 10) for i in range(3)] == [1.0, 2.0, 2.0]
    assert not OptimizerSettings().scheduled
    assert math.isclose(OptimizerSettings(lr=1.0, schedule="cosine").lr_at(0, 10), 1.0)


def test_an_unknown_schedule_is_a_one_line_error():
    host = load_plugins()
    with pytest.raises(ConfigError, match=r"optim.generator.schedule: .*'constant', 'linear' or 'cosine'"):
        make_config(host, "dcgan", {**SMALL, "optim.generator.schedule": "step"})
    with pytest.raises(ConfigError, match=r"optim.critic.warmup_steps"):
        make_config(host, "dcgan", {**SMALL, "optim.critic.warmup_steps": -1})


def test_the_kernel_steps_the_schedule_logs_it_and_resumes_it_exactly(tmp_path):
    host = load_plugins()
    over = {**SMALL, "variant.generator_width": 8, "variant.critic_width": 8, "train.steps": 6, "log.every": 1,
            "optim.generator.schedule": "cosine", "optim.generator.warmup_steps": 2, "optim.generator.lr": 1e-3}
    straight = train(host, make_config(host, "dcgan", over), tmp_path / "a")
    records = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    expected = OptimizerSettings(lr=1e-3, schedule="cosine", warmup_steps=2)
    assert [r["generator/lr"] for r in records] == pytest.approx([expected.lr_at(i, 6) for i in range(6)])
    assert not any("critic/lr" in r for r in records)  # a constant rate is not logged
    train(host, make_config(host, "dcgan", {**over, "train.steps": 3}), tmp_path / "b")
    resumed = train(host, make_config(host, "dcgan", over), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    assert resumed.state.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(expected.lr_at(5, 6))
