"""Orientation alignment: the transform's algebra, the search on digits, the Oriented wrapper."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gancore.translation.orient import (
    Orientation,
    apply_orientation,
    edge_features,
    find_orientation,
    orientation_matrix,
    quarter_turn,
)
from gancore.translation.oriented import Oriented
from gancore.translation.sources import DigitsPair


def _square(m: torch.Tensor) -> torch.Tensor:
    return torch.cat([m.double(), torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("side", [8, 9])
def test_quarter_turns_resample_like_rot90(k, side):
    x = torch.randn(3, 2, side, side)
    assert torch.allclose(apply_orientation(x, orientation_matrix(90 * k)), torch.rot90(x, k, dims=(2, 3)),
                          atol=1e-5)
    assert quarter_turn(orientation_matrix(90 * k)) == (k, False)
    assert quarter_turn(orientation_matrix(90 * k + 1)) is None


def test_mirror_flips_left_right_after_the_turn():
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(apply_orientation(x, orientation_matrix(0, True)), torch.flip(x, dims=[3]), atol=1e-6)
    turned_then_flipped = torch.flip(torch.rot90(x, 1, dims=(2, 3)), dims=[3])
    assert torch.allclose(apply_orientation(x, orientation_matrix(90, True)), turned_then_flipped, atol=1e-6)
    assert quarter_turn(orientation_matrix(90, True)) == (1, True)


@settings(max_examples=60, deadline=None)
@given(angle=st.floats(0, 360, allow_nan=False), mirror=st.booleans())
def test_inverse_undoes_the_orientation(angle, mirror):
    o = Orientation(angle, mirror)
    assert torch.allclose(_square(o.inverse_matrix()) @ _square(o.matrix()), torch.eye(3, dtype=torch.float64),
                          atol=1e-6)
    # a rotation (and mirror) keeps lengths: the matrix's linear part is orthogonal
    lin = o.matrix()[:, :2].double()
    assert torch.allclose(lin.T @ lin, torch.eye(2, dtype=torch.float64), atol=1e-6)
    assert math.isclose(abs(torch.linalg.det(lin).item()), 1.0, abs_tol=1e-6)


def test_edge_features_ignore_inversion_and_brightness():
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    f = edge_features(x)
    assert torch.allclose(f, edge_features(-x), atol=1e-5)
    assert torch.allclose(f, edge_features(0.5 * x + 0.2), atol=1e-5)
    assert torch.allclose(f.norm(dim=1), torch.ones(4))


@pytest.fixture(scope="module")
def digits():
    return {style: DigitsPair(DigitsPair.Config(b_style=style)).load() for style in ("rotate", "invert", "thicken")}


def test_finds_the_quarter_turn_between_digits_and_turned_digits(digits):
    d = digits["rotate"]
    o = find_orientation(d.x, d.x_b)
    assert (o.angle, o.mirror) == (90.0, False)
    assert o.distance < 0.1 * o.identity_distance


@pytest.mark.parametrize("style", ["invert", "thicken"])
def test_keeps_the_identity_when_the_domains_differ_only_in_style(digits, style):
    d = digits[style]
    o = find_orientation(d.x, d.x_b)
    assert o.is_identity and o.distance == o.identity_distance


def test_finds_an_arbitrary_angle_and_a_mirror_through_a_style_change(digits):
    d = digits["invert"]  # B inverted; then turned 217 degrees and mirrored
    b = apply_orientation(d.x_b, orientation_matrix(217, True))
    o = find_orientation(d.x, b)
    assert o.mirror and abs(o.angle - 217) <= 2, o.describe()


def test_the_same_data_gives_the_same_answer(digits):
    d = digits["rotate"]
    assert find_orientation(d.x, d.x_b, seed=3) == find_orientation(d.x, d.x_b, seed=3)


class _Probe(nn.Module):
    """A network that returns its input, so that tests see what Oriented feeds it."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w


def test_oriented_turns_the_input_unless_told_not_to():
    g = Oriented(_Probe())
    x = torch.randn(2, 1, 6, 6)
    assert not g.active and torch.equal(g(x), x)
    g.set_matrix(orientation_matrix(90))
    assert g.active and torch.equal(g(x), torch.rot90(x, 1, dims=(2, 3)))  # exact: no resampling
    assert torch.equal(g(x, transform=False), x)
    g.set_matrix(orientation_matrix(30))
    assert g.active and torch.equal(g(x), apply_orientation(x, orientation_matrix(30)))


def test_oriented_state_travels_through_state_dict_and_deepcopy():
    g = Oriented(_Probe())
    g.set_matrix(orientation_matrix(270, True))
    fresh = Oriented(_Probe())
    fresh.load_state_dict(g.state_dict())
    x = torch.randn(2, 1, 6, 6)
    assert fresh.active and torch.equal(fresh(x), g(x))
    assert torch.equal(copy.deepcopy(g)(x), g(x))
    g.set_matrix(orientation_matrix(0))
    fresh.load_state_dict(g.state_dict())
    assert not fresh.active


def test_too_few_images_are_not_searched():
    from gancore.data import TensorData
    from gancore.translation.orient import orient_generators

    g = Oriented(_Probe())
    data = TensorData(x=torch.randn(5, 1, 8, 8), x_b=torch.randn(40, 1, 8, 8))
    report = orient_generators(data, g)
    assert report.name == "orientation" and report.details["identity"] and "fewer than 16" in report.summary
    assert not g.active


def test_photos_of_different_content_keep_the_identity():
    """scikit-learn's two bundled photos (a temple, a flower): crops of one against crops of the
    other differ in content, not orientation, and no turn or mirror is adopted either way."""
    import numpy as np
    from sklearn.datasets import load_sample_images

    def crops(img: np.ndarray, seed: int, n: int = 300, size: int = 64) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        h, w, _ = img.shape
        at = [(rng.integers(0, h - size), rng.integers(0, w - size)) for _ in range(n)]
        x = np.stack([img[y:y + size, x:x + size] for y, x in at])
        return torch.tensor(x).permute(0, 3, 1, 2).float() / 127.5 - 1

    china, flower = (crops(img, seed) for seed, img in enumerate(load_sample_images().images))
    assert find_orientation(china, flower).is_identity
    assert find_orientation(flower, china).is_identity
