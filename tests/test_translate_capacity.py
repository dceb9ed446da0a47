"""``benchmarks/translate_capacity.py``: the paired diagnostic behind the rotate rows of the
unpaired translation benchmarks measures what it says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def capacity():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import translate_capacity
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return translate_capacity


def test_paired_training_learns_an_easy_restyling_and_untrained_networks_do_not(capacity):
    trained = capacity.run("siamese-default", "invert", steps=150, seed=0)
    untrained = capacity.run("siamese-default", "invert", steps=0, seed=0)
    assert trained["paired_preservation"] > 0.8
    assert untrained["paired_preservation"] < 0.5
    assert trained["test_l1"] < untrained["test_l1"]
    assert trained["architecture"] == capacity.GENERATORS["siamese-default"][0]


def test_every_listed_generator_builds_and_maps_32x32_digits_to_32x32(capacity):
    import torch

    for name, (_, builder) in capacity.GENERATORS.items():
        out = builder()(torch.zeros(2, 1, 32, 32))
        assert out.shape == (2, 1, 32, 32), name
