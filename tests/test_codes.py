"""gancore.codes: structured latent codes drawn, fixed, validated and written down."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gancore.codes import Code, codes_from_json, codes_of, codes_to_json, draw_codes, first_categorical
from gancore.nets import MLPGenerator

CODES = (Code("category", "categorical", 10), Code("c1", "uniform", 2), Code("c2", "uniform", 1, low=0.0, high=3.0))


@given(n=st.integers(1, 50), seed=st.integers(0, 2**31 - 1))
def test_draws_have_the_codes_shapes_and_ranges(n, seed):
    drawn = draw_codes(CODES, n, generator=torch.Generator().manual_seed(seed), device="cpu")
    assert drawn["category"].shape == (n,) and drawn["category"].dtype == torch.int64
    assert 0 <= int(drawn["category"].min()) and int(drawn["category"].max()) < 10
    assert drawn["c1"].shape == (n, 2) and drawn["c1"].abs().max() <= 1
    assert drawn["c2"].shape == (n, 1) and 0 <= float(drawn["c2"].min()) and float(drawn["c2"].max()) <= 3


def test_fixing_a_code_keeps_the_others_draws():
    free = draw_codes(CODES, 5, generator=torch.Generator().manual_seed(1), device="cpu")
    fixed = draw_codes(CODES, 5, generator=torch.Generator().manual_seed(1), device="cpu",
                       fixed={"category": torch.full((5,), 7)})
    assert fixed["category"].eq(7).all()
    assert torch.equal(fixed["c1"], free["c1"]) and torch.equal(fixed["c2"], free["c2"])


def test_bad_fixed_values_name_the_code():
    rng = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="code 'category' has classes 0..9, got 0..12"):
        draw_codes(CODES, 3, generator=rng, device="cpu", fixed={"category": torch.tensor([0, 12, 3])})
    with pytest.raises(ValueError, match=r"code 'c1' takes \[3, 2\] values"):
        draw_codes(CODES, 3, generator=rng, device="cpu", fixed={"c1": torch.zeros(3)})
    with pytest.raises(ValueError, match="no code 'style'"):
        draw_codes(CODES, 3, generator=rng, device="cpu", fixed={"style": torch.zeros(3)})
    with pytest.raises(ValueError, match="2 for a categorical code"):
        Code("one", "categorical", 1)
    with pytest.raises(ValueError, match="kind"):
        Code("x", "normal", 2)  # type: ignore[arg-type]


def test_the_checkpoint_json_round_trips_and_damage_is_a_value_error():
    assert codes_from_json(codes_to_json(CODES)) == CODES
    for bad in ("not json", "{}", '[{"name": "c"}]', '[{"name": "c", "kind": "odd", "size": 2}]'):
        with pytest.raises(ValueError, match="codes is not a list of codes"):
            codes_from_json(bad)


def test_one_hot_encoding_and_the_generators_codes():
    assert torch.equal(CODES[0].encode(torch.tensor([2]), torch.float32)[0], torch.eye(10)[2])
    g = MLPGenerator(3, 2, 8, 1)
    assert codes_of(g) == () and first_categorical(codes_of(g)) is None
    g.codes = CODES
    assert first_categorical(codes_of(g)) == CODES[0]
