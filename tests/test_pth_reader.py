"""torch.save's two layouts read as data (gancore.metrics.pth_reader): every tensor back bit for bit,
and anything else (another global, a view, a reach past a storage, damage anywhere) one refusal, with
nothing run from the file."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gancore.metrics.pth_reader import read_state_dict
from gancore.pickle_bytes import RefusedPickle

LAYOUTS = {"zip": True, "legacy": False}


def state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
    out = dict(net.state_dict())
    out["transposed"] = torch.randn(5, 3, generator=g).T  # a strided view of a larger storage
    out["offset"] = torch.randn(10, generator=g)[3:7]
    out["half"] = torch.randn(6, generator=g).half()
    out["bf16"] = torch.randn(2, 2, generator=g).bfloat16()
    out["int"] = torch.arange(4, dtype=torch.int32)
    out["scalar"] = torch.tensor(2.5, dtype=torch.float64)
    out["empty"] = torch.empty(0, 3)
    return out


def saved(obj, layout: str) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=LAYOUTS[layout])
    return buf.getvalue()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_tensor_comes_back_exactly(tmp_path, layout):
    expected = state()
    path = tmp_path / "w.pth"
    path.write_bytes(saved(expected, layout))
    got = read_state_dict(path)
    assert list(got) == list(expected)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and got[name].shape == tensor.shape, name
        assert torch.equal(got[name], tensor), name


class Marker:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", ["code", "not-a-dict", "nested", "a-number"])
def test_anything_but_a_dict_of_tensors_is_refused_and_runs_nothing(tmp_path, layout, case):
    marker = tmp_path / "ran"
    obj = {"code": {"w": Marker(str(marker))}, "not-a-dict": [torch.zeros(2)],
           "nested": {"a": {"b": torch.zeros(2)}}, "a-number": {"w": 3}}[case]
    path = tmp_path / "w.pth"
    path.write_bytes(saved(obj, layout))
    with pytest.raises(RefusedPickle):
        read_state_dict(path)
    assert not marker.exists()


def test_a_tensor_past_its_storage_and_a_big_endian_archive_are_refused(tmp_path):
    raw = saved({"w": torch.zeros(4)}, "zip")
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in members if n.endswith("/data.pkl"))
    prefix = name.removesuffix("data.pkl")
    for key, value in [(prefix + "data/0", b"\0" * 8), (prefix + "byteorder", b"big")]:
        path = tmp_path / f"{key.replace('/', '_')}.pth"
        with zipfile.ZipFile(path, "w") as z:
            for n, data in members.items():
                z.writestr(n, value if n == key else data)
        with pytest.raises(RefusedPickle):
            read_state_dict(path)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_truncation_or_flipped_byte_reads_or_is_refused(tmp_path_factory, layout, data):
    raw = bytearray(saved(state(), layout))
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]
    else:
        at = data.draw(st.integers(0, len(raw) - 1), label="at")
        raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    path = tmp_path_factory.mktemp("damaged") / "w.pth"
    path.write_bytes(bytes(raw))
    try:
        got = read_state_dict(path)
    except RefusedPickle:
        return
    assert isinstance(got, dict) and all(isinstance(v, torch.Tensor) for v in got.values())
