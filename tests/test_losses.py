"""The built-in losses: finite, right sign, minimum where the theory puts it, AMP-safe."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gancore.losses import (
    HingeLoss,
    LeastSquaresLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinLoss,
)

scores = st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=1, max_size=64).map(
    lambda v: torch.tensor(v, dtype=torch.float32)
)


@settings(max_examples=60, deadline=None)
@given(real=scores, fake=scores)
def test_all_losses_are_finite_scalars(real, fake):
    for loss in (NonSaturatingLoss(), MinimaxLoss(), LeastSquaresLoss(), HingeLoss(), WassersteinLoss()):
        for value in (loss.critic_loss(real, fake), loss.generator_loss(fake, real)):
            assert value.shape == () and torch.isfinite(value), type(loss).__name__


@settings(max_examples=60, deadline=None)
@given(real=scores, fake=scores)
def test_nonsaturating_is_bce_with_logits_and_nonnegative(real, fake):
    loss = NonSaturatingLoss()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + torch.nn.functional.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert torch.allclose(loss.critic_loss(real, fake), expected, atol=1e-5)
    assert loss.critic_loss(real, fake) >= 0 and loss.generator_loss(fake) >= 0


def test_nonsaturating_critic_minimum_is_at_perfect_separation():
    loss = NonSaturatingLoss()
    best = loss.critic_loss(torch.full((4,), 30.0), torch.full((4,), -30.0))
    worst = loss.critic_loss(torch.full((4,), -30.0), torch.full((4,), 30.0))
    assert best < 1e-6 and worst > 50
    # at D = 1/2 everywhere the critic loss is 2 log 2
    assert math.isclose(loss.critic_loss(torch.zeros(3), torch.zeros(3)).item(), 2 * math.log(2), rel_tol=1e-6)


def test_label_smoothing_moves_the_real_target():
    smooth = NonSaturatingLoss(NonSaturatingLoss.Config(real_label=0.9))
    real = torch.linspace(-5, 5, 101, requires_grad=True)
    smooth.critic_loss(real, torch.zeros(1)).backward()
    # d/dx BCE(x, 0.9) = sigmoid(x) - 0.9 is zero at sigmoid(x) = 0.9, not at +inf
    zero_at = real[real.grad.abs().argmin()].item()
    assert math.isclose(zero_at, math.log(9), abs_tol=0.1)


@settings(max_examples=60, deadline=None)
@given(fake=scores)
def test_minimax_generator_is_negated_fake_term(fake):
    assert torch.allclose(MinimaxLoss().generator_loss(fake),
                          -torch.nn.functional.softplus(fake).mean(), atol=1e-6)
    assert MinimaxLoss().generator_loss(fake) <= 0


@settings(max_examples=60, deadline=None)
@given(real=scores, fake=scores)
def test_least_squares_is_nonnegative_and_zero_at_targets(real, fake):
    loss = LeastSquaresLoss()
    assert loss.critic_loss(real, fake) >= 0 and loss.generator_loss(fake) >= 0
    assert loss.critic_loss(torch.ones(5), torch.zeros(5)) == 0
    assert loss.generator_loss(torch.ones(5)) == 0


@settings(max_examples=60, deadline=None)
@given(real=scores, fake=scores)
def test_hinge_is_zero_beyond_the_margins(real, fake):
    loss = HingeLoss()
    assert loss.critic_loss(real, fake) >= 0
    assert loss.critic_loss(real.abs() + 1, -fake.abs() - 1) == 0


@settings(max_examples=60, deadline=None)
@given(real=scores, fake=scores)
def test_wasserstein_is_the_mean_difference_and_antisymmetric(real, fake):
    loss = WassersteinLoss()
    value = loss.critic_loss(real, fake)
    assert torch.allclose(value, fake.mean() - real.mean(), atol=1e-4)
    assert torch.allclose(loss.critic_loss(fake, real), -value, atol=1e-4)


def test_losses_compute_in_float32_under_autocast():
    real = torch.randn(16, dtype=torch.bfloat16)
    fake = torch.randn(16, dtype=torch.bfloat16)
    for loss in (NonSaturatingLoss(), LeastSquaresLoss(), HingeLoss(), WassersteinLoss()):
        assert loss.critic_loss(real, fake).dtype == torch.float32
