"""Built-in data sources."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gancore.data.digits import Digits
from gancore.data.image_folder import ImageFolder
from gancore.errors import ConfigError


def test_digits_default_shape_range_and_labels():
    data = Digits().load()
    assert data.x.shape == (1797, 1, 32, 32) and data.x.dtype == torch.float32
    assert data.x.min() >= -1 and data.x.max() <= 1
    assert data.x.min() == -1 and data.x.max() > 0.9
    assert data.y.dtype == torch.int64 and set(data.y.tolist()) == set(range(10))
    assert data.num_classes == 10 and data.spec.kind == "image"


def test_digits_split_is_fixed_and_disjoint():
    train = Digits(Digits.Config(split="train", image_size=8)).load()
    test = Digits(Digits.Config(split="test", image_size=8)).load()
    assert len(train) + len(test) == 1797 and len(test) == 360
    again = Digits(Digits.Config(split="test", image_size=8)).load()
    assert torch.equal(test.x, again.x)


def _write(path, array, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    _write(tmp_path / "cats" / "a.png", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), "RGB")
    _write(tmp_path / "cats" / "b.jpg", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8), "RGB")
    _write(tmp_path / "dogs" / "c.png", rng.integers(0, 255, (16, 16), dtype=np.uint8), "L")
    data = ImageFolder(ImageFolder.Config(path=str(tmp_path), image_size=16)).load()
    assert data.x.shape == (3, 3, 16, 16)
    assert data.y.tolist() == [0, 0, 1] and data.num_classes == 2
    assert data.x.min() >= -1 and data.x.max() <= 1


def test_image_folder_flat_is_unlabelled_and_grayscale(tmp_path):
    _write(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8), "RGB")
    data = ImageFolder(ImageFolder.Config(path=str(tmp_path), image_size=8, channels=1)).load()
    assert data.x.shape == (1, 1, 8, 8) and data.y is None and data.num_classes == 0


def test_image_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="data.path: .* is not a folder"):
        ImageFolder(ImageFolder.Config(path=str(tmp_path / "missing"))).load()
    with pytest.raises(ConfigError, match="data.path: no images"):
        ImageFolder(ImageFolder.Config(path=str(tmp_path))).load()
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ConfigError, match="cannot read image .*bad.png"):
        ImageFolder(ImageFolder.Config(path=str(tmp_path))).load()
