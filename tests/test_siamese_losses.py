"""The Siamese losses: contrastive and seed 000's fixed-anchor form, and their reduction to LSGAN."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gancore.app import load_plugins
from gancore.errors import ConfigError
from gancore.losses import ContrastiveLoss, LeastSquaresLoss, SiameseAnchorLoss, contrastive, squared_distance

# Components on a 1e-3 grid: distinct encodings then differ by at least ~1e-3, whose float32 square
# does not underflow ("zero exactly when the encodings coincide" is about representable distances).
floats = st.floats(-20, 20, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def encodings(draw, n=None, d=None):
    n = n or draw(st.integers(1, 8))
    d = d or draw(st.integers(1, 6))
    values = draw(st.lists(floats, min_size=n * d, max_size=n * d))
    return torch.tensor(values, dtype=torch.float32).reshape(n, d)


@st.composite
def pairs(draw):
    a = draw(encodings())
    b = draw(encodings(n=a.shape[0], d=a.shape[1]))
    same = torch.tensor(draw(st.lists(st.booleans(), min_size=len(a), max_size=len(a))))
    return a, b, same


def test_registered_in_the_core():
    host = load_plugins(entry_points=False)
    assert {"contrastive", "siamese-anchor"} <= set(host.losses)


@settings(max_examples=80, deadline=None)
@given(p=pairs(), margin=st.floats(0.01, 50))
def test_contrastive_is_nonnegative_and_zero_exactly_where_the_theory_says(p, margin):
    a, b, same = p
    loss = contrastive(a, b, same, margin)
    d2 = (a.double() - b.double()).pow(2).sum(1)
    assert loss.shape == (len(a),) and (loss >= 0).all()
    for i in range(len(a)):
        if same[i]:  # similar pairs cost 1/2 d^2: zero only when the encodings coincide
            assert torch.isclose(loss[i].double(), 0.5 * d2[i], rtol=1e-4, atol=1e-4)
            assert (loss[i] == 0) == bool(torch.equal(a[i], b[i]))
        else:  # dissimilar pairs cost nothing once d^2 >= margin
            assert torch.isclose(loss[i].double(), 0.5 * torch.clamp(margin - d2[i], min=0), rtol=1e-4, atol=1e-4)
            if d2[i] >= margin * (1 + 1e-4):
                assert loss[i] == 0
            elif d2[i] < margin * (1 - 1e-4):
                assert loss[i] > 0


@settings(max_examples=60, deadline=None)
@given(real=encodings(d=4), margin=st.floats(0.1, 10))
def test_contrastive_gan_loss_is_zero_for_identical_reals_and_distant_fakes(real, margin):
    loss = ContrastiveLoss(ContrastiveLoss.Config(margin=margin))
    same_reals = real[:1].expand_as(real)
    far = same_reals + (2 * margin) ** 0.5  # d^2 = 4 * 2 margin >= margin for every pair
    assert loss.critic_loss(same_reals, far) == 0
    assert loss.generator_loss(same_reals.clone(), same_reals) == 0
    assert loss.generator_loss(far, same_reals) > 0
    with pytest.raises(ConfigError, match="real batch"):
        loss.generator_loss(far)


@settings(max_examples=80, deadline=None)
@given(real=encodings(d=3), fake=encodings(d=3), anchor=st.floats(-3, 3), margin=st.floats(0.01, 20))
def test_anchor_loss_is_nonnegative_and_zero_exactly_where_the_theory_says(real, fake, anchor, margin):
    loss = SiameseAnchorLoss(SiameseAnchorLoss.Config(anchor=anchor, margin=margin))
    critic, gen = loss.critic_loss(real, fake), loss.generator_loss(fake)
    d_real = (real.double() - anchor).pow(2).sum(1)
    d_fake = (fake.double() - anchor).pow(2).sum(1)
    expected = 0.5 * d_real.mean() + 0.5 * torch.clamp(margin - d_fake, min=0).mean()
    assert torch.isclose(critic.double(), expected, rtol=1e-4, atol=1e-4)
    assert torch.isclose(gen.double(), 0.5 * d_fake.mean(), rtol=1e-4, atol=1e-4)
    assert critic >= 0 and gen >= 0
    at_anchor = torch.full_like(real, anchor)
    beyond = torch.full_like(fake, anchor + margin**0.5 + 0.1)  # d^2 > margin
    assert loss.critic_loss(at_anchor, beyond) == 0  # reals on the anchor, fakes beyond the margin
    assert loss.generator_loss(at_anchor) == 0
    assume(d_real.max() > 1e-3)
    assert loss.critic_loss(real, beyond) > 0


scores = st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=1, max_size=32).map(
    lambda v: torch.tensor(v, dtype=torch.float32)
)


@settings(max_examples=100, deadline=None)
@given(real=scores, fake=scores, as_column=st.booleans())
def test_length_one_siamese_with_anchor_one_is_least_squares(real, fake, as_column):
    """Seed 000: a critic with vec_len 1, real near 1 and fake near 0, is LSGAN. Values and gradients."""
    siamese = SiameseAnchorLoss(SiameseAnchorLoss.Config(anchor=1.0, fake_point=0.0))
    lsgan = LeastSquaresLoss()  # targets b = 1 (real), a = 0 (fake), c = 1 (generator)
    vec = (lambda t: t[:, None]) if as_column else (lambda t: t)  # [N, 1] encodings or [N] scores
    r1, f1 = real.clone().requires_grad_(), fake.clone().requires_grad_()
    r2, f2 = real.clone().requires_grad_(), fake.clone().requires_grad_()
    s_critic, l_critic = siamese.critic_loss(vec(r1), vec(f1)), lsgan.critic_loss(r2, f2)
    s_gen, l_gen = siamese.generator_loss(vec(f1)), lsgan.generator_loss(f2)
    assert torch.allclose(s_critic, l_critic, rtol=1e-5, atol=1e-5)
    assert torch.allclose(s_gen, l_gen, rtol=1e-5, atol=1e-5)
    # Closed form, so that the two cannot drift together.
    expected = 0.5 * (real.double() - 1).pow(2).mean() + 0.5 * fake.double().pow(2).mean()
    assert torch.isclose(l_critic.double(), expected, rtol=1e-4, atol=1e-4)
    assert torch.isclose(s_gen.double(), 0.5 * (fake.double() - 1).pow(2).mean(), rtol=1e-4, atol=1e-4)
    gs = torch.autograd.grad(s_critic + s_gen, (r1, f1))
    gl = torch.autograd.grad(l_critic + l_gen, (r2, f2))
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(gs, gl, strict=True))


def test_margin_form_is_not_least_squares():
    """The default (margin) form differs from LSGAN: fakes far away cost the critic nothing."""
    siamese = SiameseAnchorLoss(SiameseAnchorLoss.Config(anchor=1.0, margin=1.0))
    real, fake = torch.ones(4), torch.full((4,), -5.0)
    assert siamese.critic_loss(real, fake) == 0
    assert LeastSquaresLoss().critic_loss(real, fake) > 0


def test_losses_compute_in_float32_under_reduced_precision():
    out = torch.randn(8, 16).to(torch.bfloat16)
    for loss in (ContrastiveLoss(), SiameseAnchorLoss()):
        assert loss.critic_loss(out, out.flip(0)).dtype == torch.float32
    assert squared_distance(out, 0.0).dtype == torch.float32
