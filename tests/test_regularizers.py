"""Regularizers: closed-form penalties in every precision, per-sample interpolation, lazy
regularization, constraints, spectral norm, and a clear error for ops without double backward."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from gancore import Batch, Critic, Networks, PenaltyInput, StepContext, StepOutput, Variant, hookimpl
from gancore.app import load_plugins
from gancore.errors import TrainingError
from gancore.kernel.precision import Precision, scaled_grad
from gancore.nets import DCGANGenerator
from gancore.regularizers import R1, R2, GradientPenalty, SpectralNorm, WeightClip
from gancore.testing import SMALL, make_config, train

CUDA = torch.cuda.is_available()


class LinearCritic(Critic):
    """f(x) = <w, x> per sample: its input gradient is w, so |grad| = |w| exactly."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self.seen.append(x.detach())
        out = x.flatten(1) @ self.w.flatten()  # a matmul, so autocast runs it in low precision
        self.out_dtype = out.dtype
        return out


def penalty_of(reg, critic, real, fake, precision: str = "fp32", device: str = "cpu", scale=2.0**16):
    prec = Precision(precision, torch.device(device))
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16", init_scale=scale)
    with prec.autocast():
        return reg.penalty(PenaltyInput(critic=critic, real=real, fake=fake), scaled_grad(scaler))


shapes = st.sampled_from([(4, 2), (3, 1, 4, 4), (2, 3, 8, 8), (5, 3, 2, 6)])


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), scale=st.floats(0.05, 5.0))
def test_gradient_penalty_closed_form_fp32(shape, seed, scale):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape[1:], generator=g) * scale
    real, fake = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    expected = (w.norm() - 1.0) ** 2  # the norm over ALL of C x H x W, not per channel
    value = penalty_of(GradientPenalty(), LinearCritic(w), real, fake)
    assert torch.allclose(value, expected, rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), scale=st.floats(0.05, 5.0))
def test_gradient_penalty_closed_form_bf16_autocast(shape, seed, scale):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape[1:], generator=g) * scale
    real, fake = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    expected = (w.norm() - 1.0) ** 2
    critic = LinearCritic(w)
    value = penalty_of(GradientPenalty(), critic, real, fake, "bf16")
    assert critic.out_dtype == torch.bfloat16 and value.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa: the gradient w is rounded to ~0.4% relative
    assert torch.allclose(value, expected, rtol=2e-2, atol=2e-2 * w.norm().item())


DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [1.0, 2.0**8])
def test_gradient_penalty_closed_form_fp16_with_a_fresh_scaler(device, scale):
    """fp16 autocast + GradScaler, on the scaler's very first use (before any scale() call)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 8, 8, generator=g) * 0.3
    real, fake = torch.randn(16, 3, 8, 8, generator=g), torch.randn(16, 3, 8, 8, generator=g)
    critic = LinearCritic(w).to(device)
    value = penalty_of(GradientPenalty(), critic, real.to(device), fake.to(device), "fp16", device, scale)
    assert critic.out_dtype == torch.float16 and torch.isfinite(value)
    assert math.isclose(value.item(), ((w.norm() - 1) ** 2).item(), rel_tol=1e-2, abs_tol=1e-3)


def test_scaled_gradient_is_unscaled_exactly():
    """Under a scaler, the gradient is taken of scale x outputs and divided back (fp32 here)."""
    x = torch.randn(4, 5, requires_grad=True)
    w = torch.randn(5, requires_grad=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**20)
    g = scaled_grad(scaler)(x @ w, x)
    assert torch.allclose(g, w.expand(4, 5), rtol=1e-6)
    assert g.requires_grad  # a graph for the penalty's backward


def test_overflowing_scaled_gradient_shows_as_a_non_finite_penalty():
    """Scaled fp16 gradients that overflow give inf, which GradScaler then skips and backs off."""
    w = torch.full((3, 8, 8), 1.0)
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    value = penalty_of(GradientPenalty(), LinearCritic(w), real, fake, "fp16", "cpu", 2.0**16)
    assert not torch.isfinite(value)


def test_interpolation_weight_is_drawn_per_sample():
    real, fake = torch.randn(6, 3, 4, 4), torch.randn(6, 3, 4, 4)
    critic = LinearCritic(torch.randn(3, 4, 4))
    penalty_of(GradientPenalty(), critic, real, fake)
    mixed = critic.seen[-1]
    ratio = ((mixed - fake) / (real - fake)).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-4), "alpha varies within a sample"
    assert ratio[:, 0].unique().numel() == 6, "alpha must differ between samples"
    assert ((ratio >= 0) & (ratio <= 1)).all()


def test_one_sided_penalty_ignores_small_gradients():
    reg = GradientPenalty(GradientPenalty.Config(one_sided=True))
    small, big = torch.full((2, 2), 0.1), torch.full((2, 2), 1.0)  # norms 0.2 and 2.0
    x = torch.randn(4, 2, 2)
    assert penalty_of(reg, LinearCritic(small), x, x.flip(0)) == 0
    assert torch.isclose(penalty_of(reg, LinearCritic(big), x, x.flip(0)), torch.tensor(1.0))


def test_r1_and_r2_closed_form():
    w = torch.randn(3, 4, 4)
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    for reg in (R1(), R2()):
        critic = LinearCritic(w)
        assert torch.allclose(penalty_of(reg, critic, real, fake), 0.5 * w.pow(2).sum(), rtol=1e-5)
    critic = LinearCritic(w)
    penalty_of(R1(), critic, real, fake)
    assert torch.equal(critic.seen[-1], real)
    penalty_of(R2(), critic, real, fake)
    assert torch.equal(critic.seen[-1], fake)


def test_penalty_under_autocast_matches_fp32_for_a_real_critic():
    torch.manual_seed(0)
    from gancore.nets import DCGANCritic

    critic = DCGANCritic(1, 16, 8, norm="layer")
    real, fake = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    torch.manual_seed(1)
    a = penalty_of(GradientPenalty(), critic, real, fake, "fp32")
    torch.manual_seed(1)
    b = penalty_of(GradientPenalty(), critic, real, fake, "bf16")
    assert torch.isclose(a, b, rtol=5e-2), (a, b)


def test_weight_clip_clamps_every_critic_parameter():
    critic = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(100)
    WeightClip(WeightClip.Config(clip=0.05)).after_step(critic)
    assert all(p.abs().max() <= 0.05 for p in critic.parameters())


def test_spectral_norm_bounds_every_layer():
    from gancore.nets import DCGANCritic

    critic = SpectralNorm().attach(DCGANCritic(1, 16, 8, norm="none"))
    layers = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    for _ in range(30):
        critic(torch.randn(4, 1, 16, 16))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)
        assert sigma < 1.05


# -- through the kernel ------------------------------------------------------------------------


class CdistCritic(Critic):
    """A critic built on torch.cdist, which PyTorch cannot differentiate twice."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors = nn.Parameter(torch.randn(3, 16 * 16))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cdist(x.flatten(1), self.anchors).sum(1)


class CdistGAN(Variant):
    """A throwaway variant whose critic has no double backward."""

    name = "cdist-gan"

    def build(self) -> Networks:
        return Networks(generator=DCGANGenerator(8, 1, 16, 4), critic=CdistCritic())

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        with torch.no_grad():
            fake = g(g.sample_latent(len(batch.x), generator=ctx.rng, device=ctx.device))
        return StepOutput(terms={"adv": self.loss.critic_loss(d(batch.x), d(fake))},
                          penalties=[PenaltyInput(critic=d, real=batch.x, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        fake = g(g.sample_latent(len(batch.x), generator=ctx.rng, device=ctx.device))
        return StepOutput(terms={"adv": self.loss.generator_loss(d(fake))})


class CdistPlugin:
    @hookimpl
    def gancore_register_variants(self):
        return [CdistGAN]


def test_critic_without_double_backward_gets_an_error_naming_the_op(tmp_path):
    host = load_plugins(extra=[("cdist", CdistPlugin())])
    cfg = make_config(host, "cdist-gan", {**SMALL, "regularizers": [{"name": "gradient-penalty"}]})
    with pytest.raises(TrainingError, match=r"gradient-penalty penalty needs the critic's double backward.*'_cdist'"):
        train(host, cfg, tmp_path / "run")
    # without a penalty the same critic trains
    cfg = make_config(host, "cdist-gan", SMALL)
    assert train(host, cfg, tmp_path / "ok").step == 2


def test_any_variant_takes_regularizers_from_config_and_lazy_ones_skip_steps(tmp_path):
    import json

    host = load_plugins()
    cfg = make_config(host, "dcgan", {**SMALL, "train.steps": 4, "variant.generator_width": 4,
                                       "variant.critic_width": 4,
                                       "regularizers": [{"name": "r1", "weight": 1.0, "every": 2},
                                                        {"name": "spectral-norm"}]})
    trainer = train(host, cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert ["critic/r1" in r for r in records] == [True, False, True, False]
    assert any(hasattr(m, "parametrizations") for m in trainer.built.nets.critic.modules())
    # a spectrally normalised critic round-trips through its checkpoint
    from gancore.inference import load_model

    model, _ = load_model(host, tmp_path / "run")
    for k, v in trainer.built.nets.critic.state_dict().items():
        assert torch.equal(v.cpu(), model.nets.critic.state_dict()[k]), k


class EmbeddingCritic(Critic):
    """f(x) = W x per sample, ``[N, D]`` out: the gradient of the summed components is W^T 1."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())  # [D, features]

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return x.flatten(1) @ self.w.t()


@settings(max_examples=30, deadline=None)
@given(shape=shapes, dim=st.integers(2, 9), seed=st.integers(0, 10_000), precision=st.sampled_from(["fp32", "bf16"]))
def test_penalties_on_critics_that_output_vectors_closed_form(shape, dim, seed, precision):
    """An ``[N, D]`` critic goes through the same grad_fn: the gradient of the summed outputs."""
    g = torch.Generator().manual_seed(seed)
    features = math.prod(shape[1:])
    w = torch.randn(dim, features, generator=g) / math.sqrt(features)
    real, fake = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    grad_norm = w.sum(0).norm()
    tol = {"rtol": 1e-4, "atol": 1e-5} if precision == "fp32" else {"rtol": 5e-2, "atol": 5e-2}
    gp = penalty_of(GradientPenalty(), EmbeddingCritic(w), real, fake, precision)
    assert torch.allclose(gp, (grad_norm - 1.0) ** 2, **tol)
    r1 = penalty_of(R1(), EmbeddingCritic(w), real, fake, precision)
    assert torch.allclose(r1, 0.5 * grad_norm**2, **tol)


def test_the_penalty_contract_is_typed():
    from gancore import NoSettings, PenaltySettings, Regularizer
    from gancore.regularizers import BUILTIN_REGULARIZERS

    by_name = {cls.name: cls for cls in BUILTIN_REGULARIZERS}
    assert {n for n, c in by_name.items() if c.needs_double_backward} == {"gradient-penalty", "r1", "r2"}
    for name in ("gradient-penalty", "r1", "r2"):
        assert issubclass(by_name[name].Config, PenaltySettings)
    reg = by_name["r1"](by_name["r1"].Config(weight=3.0, every=16))
    assert (reg.weight, reg.every) == (3.0, 16)

    class Constraint(Regularizer):
        name = "test-constraint"

    plain = Constraint(NoSettings())
    assert (plain.weight, plain.every, plain.needs_double_backward) == (1.0, 1, False)
