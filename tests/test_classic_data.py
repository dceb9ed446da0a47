"""MNIST, Fashion-MNIST and CIFAR-10 from small files written in their real layouts."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gancore.cli import cli
from gancore.data.classic import CIFAR10, MNIST, FashionMNIST
from gancore.errors import ConfigError


def idx(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder: Path, n: int = 12, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for prefix in ("train", "t10k"):
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
            data = idx(array)
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
    return images, labels


def test_mnist_reads_plain_and_gzipped_idx_files_and_torchvisions_layout(tmp_path):
    images, labels = write_mnist(tmp_path / "plain")
    data = MNIST(MNIST.Config(path=str(tmp_path / "plain"), image_size=28)).load()
    assert data.x.shape == (12, 1, 28, 28) and data.num_classes == 10
    assert np.allclose((data.x.numpy()[:, 0] + 1) * 127.5, images, atol=1e-3)
    assert data.y.tolist() == labels.tolist()
    write_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", gz=True)
    fashion = FashionMNIST(FashionMNIST.Config(path=str(tmp_path / "tv"), split="test")).load()
    assert fashion.x.shape == (12, 1, 32, 32) and float(fashion.x.min()) >= -1 and float(fashion.x.max()) <= 1


def test_mnist_missing_or_damaged_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="no train-images-idx3-ubyte.*not downloaded by gancore"):
        MNIST(MNIST.Config(path=str(tmp_path))).load()
    write_mnist(tmp_path / "m")
    path = tmp_path / "m" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ConfigError, match="truncated"):
        MNIST(MNIST.Config(path=str(tmp_path / "m"))).load()
    out = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--set", "data.name=mnist",
                                   "--set", f"data.path={tmp_path / 'm'}"])
    assert out.exit_code == 2 and "truncated" in out.output and len(out.output.strip().splitlines()) == 1


def write_cifar_bin(folder: Path, per_batch: int = 4) -> np.ndarray:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    everything = []
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (per_batch, 3073), dtype=np.uint8)
        records[:, 0] = np.arange(per_batch) % 10
        records.tofile(folder / name)
        everything.append(records)
    return np.concatenate(everything[:5])


def test_cifar10_binary_batches_train(tmp_path):
    records = write_cifar_bin(tmp_path / "cifar-10-batches-bin")
    data = CIFAR10(CIFAR10.Config(path=str(tmp_path))).load()
    assert data.x.shape == (20, 3, 32, 32) and data.y.tolist() == records[:, 0].tolist()
    assert np.allclose((data.x.numpy() + 1) * 127.5, records[:, 1:].reshape(-1, 3, 32, 32), atol=1e-3)
    run = CliRunner().invoke(cli, ["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=cifar10",
                                   "--set", f"data.path={tmp_path}", "--set", "train.steps=2",
                                   "--set", "train.batch_size=8", "--set", "log.progress=false",
                                   "--set", "variant.generator_width=8", "--set", "variant.critic_width=8"])
    assert run.exit_code == 0, run.output


def test_cifar10_python_batches_load_and_a_crafted_pickle_runs_nothing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8), b"labels": [1, 2, 3],
                 b"batch_label": b"x", b"filenames": [b"a.png", b"b.png", b"c.png"]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    data = CIFAR10(CIFAR10.Config(path=str(tmp_path), split="test")).load()
    assert data.x.shape == (3, 3, 32, 32) and data.y.tolist() == [1, 2, 3]

    marker = tmp_path / "owned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}))
    with pytest.raises(ConfigError, match="refused global (posix|os).system"):
        CIFAR10(CIFAR10.Config(path=str(tmp_path), split="test")).load()
    assert not marker.exists()
