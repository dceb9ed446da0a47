"""Sources that never trust a file (issue 29, items 3 and 6): labels are checked against the classes a source
declares and shapes against what it reads, when the data is loaded or packed; the CIFAR python-batch reader
and the stylegan2 zip reader turn any damage (crafted values, flipped bytes, empty batches, encrypted or
deflate64 members, corrupt deflate bytes) into one line naming the file."""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gancore.cli import cli
from gancore.data.classic import CIFAR10
from gancore.errors import ConfigError

RUN = ["--set", "train.steps=1", "--set", "log.progress=false", "--set", "train.batch_size=4",
       "--set", "variant.generator_width=4", "--set", "variant.critic_width=4", "--set", "data.image_size=16"]


def one_line_exit_2(args: list[str], match: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and re.search(match, result.output), result.output
    assert isinstance(result.exception, SystemExit) and len(result.output.strip().splitlines()) == 1


def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def mnist(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(labels))
    return folder


@pytest.mark.parametrize(("images", "labels", "match"), [
    (np.zeros((8, 28, 28), np.uint8), np.arange(8, dtype=np.uint8) + 5, r"labels run from 5 to 12, outside 0\.\.9"),
    (np.zeros((8, 0, 0), np.uint8), np.arange(8, dtype=np.uint8), r"images \[8, 0, 0\] .*H x W >= 1"),
])
def test_mnist_labels_and_shapes_are_checked_when_loaded(tmp_path, images, labels, match):
    folder = mnist(tmp_path / "m", images, labels)
    for variant in ("dcgan", "cgan"):
        one_line_exit_2(["run", variant, "--out", str(tmp_path / variant), "--set", "data.name=mnist",
                         "--set", f"data.path={folder}", *RUN], match)
        assert not (tmp_path / variant).exists()


def stylegan_zip(path: Path, labels: list, method: int = zipfile.ZIP_STORED) -> Path:
    rng = np.random.default_rng(3)
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        names = []
        for i in range(len(labels)):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, format="png")
            names.append(f"00000/img{i:08d}.png")
            archive.writestr(names[-1], buffer.getvalue())
        archive.writestr("dataset.json", json.dumps({"labels": [[n, label] for n, label in zip(names, labels,
                                                                                               strict=True)]}))
    return path


@pytest.mark.parametrize(("label", "shown"), [(1.7, "1.7"), (2**40, "1099511627776"), (True, "true"), (-1, "-1"),
                                              ([0, 1], r"\[0, 1\]")])
def test_a_stylegan_zip_label_that_is_no_class_index_is_refused(tmp_path, label, shown):
    path = stylegan_zip(tmp_path / "ds.zip", [0, 1, label, 1])
    one_line_exit_2(["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=stylegan-zip",
                     "--set", f"data.path={path}", *RUN],
                    rf"dataset.json labels 00000/img00000002.png {shown}; expected a whole class index")


def patch_member(path: Path, member: str, *, flag: int | None = None, method: int | None = None) -> None:
    """Rewrite one member's general-purpose flag or compression method in its local and central headers."""
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo(member)
    central = raw.index(b"PK\x01\x02")  # the first central-directory header
    while True:
        name_len = struct.unpack("<H", raw[central + 28:central + 30])[0]
        if raw[central + 46:central + 46 + name_len].decode() == member:
            break
        extra, comment = struct.unpack("<HH", raw[central + 30:central + 34])
        central += 46 + name_len + extra + comment
    for header, flag_at, method_at in ((info.header_offset, 6, 8), (central, 8, 10)):
        if flag is not None:
            raw[header + flag_at:header + flag_at + 2] = struct.pack("<H", flag)
        if method is not None:
            raw[header + method_at:header + method_at + 2] = struct.pack("<H", method)
    path.write_bytes(bytes(raw))


def corrupt_deflate(path: Path, member: str) -> None:
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(40, info.compress_size)):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", ["encrypted", "deflate64", "corrupt deflate"])
def test_a_damaged_zip_member_is_one_line_naming_it_or_skipped(tmp_path, damage):
    member = "00000/img00000001.png"
    path = stylegan_zip(tmp_path / "ds.zip", [0, 1, 2, 0, 1], method=zipfile.ZIP_DEFLATED)
    if damage == "encrypted":
        patch_member(path, member, flag=0x1)
    elif damage == "deflate64":
        patch_member(path, member, method=9)
    else:
        corrupt_deflate(path, member)
    args = ["run", "cgan", "--set", "data.name=stylegan-zip", "--set", f"data.path={path}", *RUN]
    one_line_exit_2([*args[:2], "--out", str(tmp_path / "run"), *args[2:]], re.escape(member))
    skipped = CliRunner().invoke(cli, [*args[:2], "--out", str(tmp_path / "skip"), *args[2:],
                                       "--set", "data.skip_bad=true"])
    assert skipped.exit_code == 0 and member in skipped.output, skipped.output


def cifar_python(root: Path, raw: bytes) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(raw)
    return root


GOOD = pickle.dumps({b"data": np.random.default_rng(2).integers(0, 256, (3, 3072), dtype=np.uint8),
                     b"labels": [1, 2, 3], b"batch_label": b"x", b"filenames": [b"a", b"b", b"c"]}, protocol=2)


@pytest.mark.parametrize("batch", [
    {b"data": 5, b"labels": 3}, {b"data": [[300] * 3072], b"labels": [1]}, {b"data": "abc", b"labels": "x"},
    {b"data": [[1] * 3072], b"labels": [2**70]}, {b"data": [[-1] * 3072], b"labels": [1]}, [1, 2],
    {b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, {b"data": np.zeros((1, 3072)), b"labels": [1]},
    {b"data": [[1] * 3072], b"labels": [None]}, {b"data": [[1] * 3072], b"labels": [1.5]},
    {b"data": [[1] * 3072], b"labels": 7}, {b"data": [[1] * 3072], b"labels": [12]}, None,
], ids=lambda b: repr(b)[:40])
def test_a_crafted_cifar_python_batch_is_one_line(tmp_path, batch):
    root = cifar_python(tmp_path, pickle.dumps(batch, protocol=2))
    one_line_exit_2(["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=cifar10",
                     "--set", f"data.path={root}", *RUN], r"data.path: .*cifar-10-batches-py")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, len(GOOD) - 1), xor=st.integers(1, 255), cut=st.booleans())
def test_any_flipped_byte_or_truncation_of_a_cifar_batch_loads_or_is_one_line(tmp_path_factory, at, xor, cut):
    raw = GOOD[:at] if cut else GOOD[:at] + bytes([GOOD[at] ^ xor]) + GOOD[at + 1:]
    root = cifar_python(tmp_path_factory.mktemp("c"), raw)
    try:
        data = CIFAR10(CIFAR10.Config(path=str(root), split="test")).load()
    except ConfigError as exc:
        assert "\n" not in str(exc) and "test_batch" in str(exc)
    else:  # what loads is well-formed, or the check the trainer makes names it
        assert data.x.dim() == 4 and data.x.shape[1] == 3
        try:
            data.check("data.path: cifar")
        except ConfigError as exc:
            assert "\n" not in str(exc) and "labels" in str(exc)


def test_empty_cifar_binary_batches_are_one_line(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(b"")
    one_line_exit_2(["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=cifar10",
                     "--set", f"data.path={tmp_path}", *RUN], "data_batch_1.bin is not whole 3,073-byte")
