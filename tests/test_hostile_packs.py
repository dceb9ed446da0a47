"""A pack is external input (issue 29, items 3, 6 and 7): its header is checked on opening by `run`, `data info`
and `data preview` alike — images uint8 [N, C, S, S], labels int64 [N] within a whole-number num_classes,
settings a JSON object, no negative shape — and any truncation of a pack is one line, never a traceback."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gancore.cli import cli

Edit = Callable[[dict], None]


@pytest.fixture(scope="module")
def digits_pack(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "d.pack"
    result = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(out), "--no-progress",
                                      "--set", "data.image_size=8"])
    assert result.exit_code == 0, result.output
    return out


def with_header(pack: Path, out: Path, edit: Edit) -> Path:
    """A copy of ``pack`` whose safetensors header (the JSON before the arrays) ``edit`` has changed."""
    raw = pack.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-(8 + len(text)) % 8)
    out.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length:])
    return out


def meta(**values: str) -> Edit:
    return lambda h: h["__metadata__"].update(values)


def entry(name: str, **values) -> Edit:
    return lambda h: h[name].update(values)


def shape_of(header: dict, name: str) -> list[int]:
    return header[name]["shape"]


def labels_to(value: int) -> Callable[[Path], None]:
    """Overwrite the first label's 8 bytes (labels are the last array of a one-domain pack)."""
    def damage(path: Path) -> None:
        raw = bytearray(path.read_bytes())
        (length,) = struct.unpack("<Q", raw[:8])
        begin = 8 + length + json.loads(raw[8:8 + length])["labels"]["data_offsets"][0]
        raw[begin:begin + 8] = struct.pack("<q", value)
        path.write_bytes(bytes(raw))
    return damage


def fewer_labels(h: dict) -> None:
    n = h["labels"]["shape"][0]
    h["labels"].update(shape=[n - 1], data_offsets=[h["labels"]["data_offsets"][0], h["labels"]["data_offsets"][1] - 8])


HEADERS: dict[str, tuple[Edit, str]] = {
    "num_classes text": (meta(num_classes="abc"), "num_classes 'abc' is not a whole number"),
    "num_classes negative": (meta(num_classes="-5"), "num_classes '-5' is not a whole number"),
    "num_classes below the labels": (meta(num_classes="3"), r"'labels' run from 0 to 9, outside 0\.\.2"),
    "settings not JSON": (meta(settings="{not json"), "'settings' is not a JSON object"),
    "settings a list": (meta(settings="[1, 2]"), "'settings' is not a JSON object"),
    "rank-3 images": (lambda h: h["images"].update(shape=[shape_of(h, "images")[0], 8, 8]),
                      r"'images' is uint8 \[\d+, 8, 8\]; expected uint8 \[N, C, S, S\]"),
    "int64 images": (lambda h: h["images"].update(dtype="I64", shape=[shape_of(h, "images")[0], 1, 8, 1]),
                     r"'images' is int64 .*expected uint8"),
    "negative shape": (lambda h: h["images"].update(shape=[-shape_of(h, "images")[0], 1, 8, -8]),
                       r"'images' does not fit its shape \[-\d+, 1, 8, -8\]"),
    "fewer labels than images": (fewer_labels, r"'labels' is int64 \[\d+\]; expected int64 \[\d+\], one label per"),
}


def refused_everywhere(path: Path, tmp_path: Path, match: str) -> None:
    import re

    for args in (["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=pack",
                  "--set", f"data.path={path}", "--set", "train.steps=1"],
                 ["data", "info", str(path)],
                 ["data", "preview", str(path), "--out", str(tmp_path / "p.png")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and re.search(match, result.output), (args[:2], result.output)
        assert isinstance(result.exception, SystemExit) and len(result.output.strip().splitlines()) == 1
        assert str(path) in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("case", list(HEADERS))
def test_a_pack_header_out_of_schema_is_one_line_in_every_command(digits_pack, tmp_path, case):
    edit, match = HEADERS[case]
    refused_everywhere(with_header(digits_pack, tmp_path / "x.pack", edit), tmp_path, match)


@pytest.mark.parametrize(("value", "match"), [(2**40, r"run from 0 to 1099511627776, outside 0\.\.9"),
                                              (-3, r"run from -3 to 9, outside 0\.\.9")])
def test_labels_outside_num_classes_are_refused_before_training(digits_pack, tmp_path, value, match):
    path = tmp_path / "x.pack"
    path.write_bytes(digits_pack.read_bytes())
    labels_to(value)(path)
    refused_everywhere(path, tmp_path, match)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 0.999))
def test_any_truncation_of_a_pack_is_one_line(digits_pack, tmp_path_factory, cut):
    raw = digits_pack.read_bytes()
    folder = tmp_path_factory.mktemp("cut")
    path = folder / "cut.pack"
    path.write_bytes(raw[:int(len(raw) * cut)])
    for args in (["data", "info", str(path)], ["data", "preview", str(path), "--out", str(folder / "p.png")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "gancore: error:" in result.output, result.output
        assert isinstance(result.exception, SystemExit) and len(result.output.strip().splitlines()) == 1
