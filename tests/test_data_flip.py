"""``data.flip`` for every image source: the core's random horizontal flips for sources that do
not declare the setting themselves (digits, image folders, ...), written to config.json, drawn
from the sampler's checkpointed generator (resume stays bitwise)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gancore.errors import ConfigError
from gancore.testing import make_config, train, weights

TINY = {"train.steps": 4, "train.batch_size": 16, "log.every": 2, "log.sample_every": 100,
        "log.checkpoint_every": 2, "log.progress": False}


def test_digits_flip_is_applied_recorded_and_resumes_bitwise(host, tmp_path):
    cfg = make_config(host, "dcgan", {**TINY, "data.flip": True})
    assert cfg.data_flip and cfg.to_dict()["data"]["flip"] is True
    straight = train(host, cfg, tmp_path / "a")
    assert straight.sampler.flip
    assert json.loads((tmp_path / "a" / "config.json").read_text())["data"]["flip"] is True
    train(host, make_config(host, "dcgan", {**TINY, "data.flip": True, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, cfg, tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    off = make_config(host, "dcgan", TINY)
    assert not off.data_flip and "flip" not in off.to_dict()["data"]


def test_flipped_batches_are_mirror_images(host, tmp_path):
    """Some rows of a drawn batch are the stored images mirrored left-right, the others unchanged."""
    from gancore.kernel.trainer import Trainer
    from gancore.testing import quiet

    cfg = make_config(host, "dcgan", {**TINY, "data.flip": True, "train.batch_size": 64})
    trainer = Trainer(host, cfg, tmp_path / "r", echo=quiet)
    data = cfg.data_cls(cfg.data).load()
    batch = trainer.sampler.next()
    plain = flipped = 0
    for row in batch.x:
        matches = torch.isclose(data.x.float(), row.float().to(data.x.device)).flatten(1).all(1)
        mirrored = torch.isclose(data.x.float().flip(-1), row.float()).flatten(1).all(1)
        plain += bool(matches.any())
        flipped += bool(mirrored.any() and not matches.any())
    trainer.sampler.close()
    trainer.directory.release()
    assert plain > 0 and flipped > 0 and plain + flipped == 64


def test_image_folder_takes_data_flip(host, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = make_config(host, "dcgan", {**TINY, "train.steps": 1, "train.batch_size": 4, "data.name": "image-folder",
                                      "data.path": str(folder), "data.image_size": 16, "data.flip": True})
    assert train(host, cfg, tmp_path / "r").sampler.flip


@pytest.mark.parametrize(("sets", "message"), [
    ({"data.flip": "sometimes"}, 'data.flip: expected true or false, got "sometimes"'),
    ({"data.name": "gaussian-ring", "data.flip": True}, "data.flip: flips images, and data source 'gaussian-ring' "
                                                        "gives vector data"),
])
def test_flip_errors_are_one_line(host, sets, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        make_config(host, "dcgan", sets)
