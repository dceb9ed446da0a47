"""Packs: `gancore data pack/info/preview`, training from a pack (in memory or streamed from the memory
map) with the batches of the same images held in memory, exact resume, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.data.image_folder import read_image
from gancore.testing import make_config, train, weights

TINY = {"train.batch_size": 8, "variant.generator_width": 8, "variant.critic_width": 8, "log.progress": False,
        "log.sample_every": 0, "log.checkpoint_every": 2, "log.every": 1}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two classes of 24 small RGB images each, of different sizes and modes (RGBA, palette, gray)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(24):
            pixels = rng.integers(0, 256, (18 + i % 5, 20, 3), dtype=np.uint8)
            img = Image.fromarray(pixels)
            img = [img, img.convert("RGBA"), img.convert("P"), img.convert("L")][i % 4]
            img.save(root / label / f"{i:03d}.png")
    return root


def pack(folder: Path, out: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, ["data", "pack", "image-folder", "--out", str(out), "--set", f"data.path={folder}",
                                    "--set", "data.image_size=16", "--no-progress", *extra])


def test_pack_decodes_every_file_in_worker_processes(folder, tmp_path):
    result = pack(folder, tmp_path / "a.pack", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "packed 48 images" in result.output
    files = sorted(folder.glob("*/*.png"))
    with safe_open(str(tmp_path / "a.pack"), "np") as fh:  # any safetensors reader opens a pack
        images, labels = fh.get_tensor("images"), fh.get_tensor("labels")
        meta = fh.metadata()
    assert images.shape == (48, 3, 16, 16) and images.dtype == np.uint8
    assert np.array_equal(images, np.stack([read_image(f, 16, 3) for f in files]))
    assert labels.tolist() == [0] * 24 + [1] * 24
    assert meta["source"] == "image-folder" and meta["count"] == "48" and meta["resize_filter"] == "lanczos"
    assert json.loads(meta["settings"])["path"] == str(folder)
    info = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "a.pack"), "--verify"])
    assert info.exit_code == 0 and "array images: uint8 [48, 3, 16, 16]" in info.output
    assert "sha256: verified" in info.output
    grid = CliRunner().invoke(cli, ["data", "preview", str(tmp_path / "a.pack"), "--out", str(tmp_path / "g.png")])
    assert grid.exit_code == 0 and Image.open(tmp_path / "g.png").size[0] > 16


def test_a_pack_trains_like_the_same_images_in_memory(folder, tmp_path):
    """Folder (float in memory), pack copied to memory, pack streamed from the file: the same batches."""
    assert pack(folder, tmp_path / "a.pack").exit_code == 0
    host = load_plugins()
    common = {**TINY, "train.steps": 3, "data.image_size": 16}
    runs = {
        "folder": {"data.name": "image-folder", "data.path": str(folder)},
        "resident": {"data.name": "pack", "data.path": str(tmp_path / "a.pack")},
        "streamed": {"data.name": "pack", "data.path": str(tmp_path / "a.pack"), "data.resident_mb": 0},
    }
    trained = {name: weights(train(host, make_config(host, "dcgan", {**common, **over}), tmp_path / name))
               for name, over in runs.items()}
    for name in ("resident", "streamed"):
        assert all(torch.equal(trained["folder"][k], trained[name][k]) for k in trained["folder"]), name


def test_a_streamed_pack_with_flips_resumes_exactly(folder, tmp_path):
    assert pack(folder, tmp_path / "a.pack").exit_code == 0
    host = load_plugins()
    over = {**TINY, "data.name": "pack", "data.path": str(tmp_path / "a.pack"), "data.resident_mb": 0,
            "data.flip": True}
    straight = train(host, make_config(host, "dcgan", {**over, "train.steps": 5}), tmp_path / "a")
    assert straight.sampler._background is not None  # gathered from the memory map in the background
    train(host, make_config(host, "dcgan", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "dcgan", {**over, "train.steps": 5}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_digits_pack_keeps_labels_and_trains_a_conditional_variant(tmp_path):
    result = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(tmp_path / "d.pack"), "--no-progress",
                                      "--set", "data.image_size=16"])
    assert result.exit_code == 0, result.output
    run = CliRunner().invoke(cli, ["run", "cgan", "--out", str(tmp_path / "run"), "--set", "data.name=pack",
                                   "--set", f"data.path={tmp_path / 'd.pack'}", "--set", "train.steps=2",
                                   "--set", "log.progress=false", "--set", "variant.generator_width=8",
                                   "--set", "variant.critic_width=8"])
    assert run.exit_code == 0, run.output
    wrong = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "w"), "--set", "data.name=pack",
                                     "--set", f"data.path={tmp_path / 'd.pack'}", "--set", "data.image_size=32"])
    assert wrong.exit_code == 2 and "data.image_size: 32, but" in wrong.output and "16x16" in wrong.output


def test_damaged_and_foreign_packs_are_one_line_errors(folder, tmp_path):
    assert pack(folder, tmp_path / "a.pack").exit_code == 0
    raw = (tmp_path / "a.pack").read_bytes()
    (tmp_path / "short.pack").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.pack").write_bytes(b"\x00" * 7)
    from safetensors.numpy import save_file

    save_file({"images": np.zeros((2, 1, 4, 4), dtype=np.uint8)}, str(tmp_path / "foreign.pack"))
    edited = bytearray(raw)
    edited[len(raw) // 2] ^= 0xFF  # a pixel (the labels come last and are range-checked on opening)
    (tmp_path / "edited.pack").write_bytes(bytes(edited))
    expected = {"short": "truncated pack", "junk": "too short", "foreign": "without gancore's pack metadata"}
    for name, message in expected.items():
        out = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / f"run-{name}"),
                                       "--set", "data.name=pack", "--set", f"data.path={tmp_path / name}.pack"])
        assert out.exit_code == 2 and message in out.output and "Traceback" not in out.output, (name, out.output)
        assert len(out.output.strip().splitlines()) == 1
    verify = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "edited.pack"), "--verify"])
    assert verify.exit_code == 2 and "do not match its sha256" in verify.output


def test_a_bad_image_stops_the_pack_or_is_skipped(folder, tmp_path):
    (folder / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "dogs" / "empty.png").write_bytes(b"")
    out = tmp_path / "a.pack"
    stopped = pack(folder, out)
    assert stopped.exit_code == 2 and "broken.png" in stopped.output and "--skip-bad" in stopped.output
    assert not out.exists() and not list(tmp_path.glob(".a.pack.tmp*"))  # nothing half-written
    skipped = pack(folder, out, "--skip-bad")
    assert skipped.exit_code == 0, skipped.output
    assert "packed 48 images, skipped 2 unreadable" in skipped.output
    assert "broken.png" in skipped.output and "empty.png" in skipped.output
    from gancore.data.pack import open_pack

    assert open_pack(out).arrays["images"].shape[0] == 48 and open_pack(out).metadata["skipped"] == "2"


def test_vector_sources_are_not_packed(tmp_path):
    out = CliRunner().invoke(cli, ["data", "pack", "gaussian-grid", "--out", str(tmp_path / "g.pack")])
    assert out.exit_code == 2 and "vector data" in out.output
    unknown = CliRunner().invoke(cli, ["data", "pack", "no-such-source", "--out", str(tmp_path / "x.pack")])
    assert unknown.exit_code == 2 and "unknown dataset 'no-such-source'" in unknown.output


def test_pack_takes_the_sources_settings_from_a_config_file(folder, tmp_path):
    config = tmp_path / "data.toml"
    config.write_text(f'[data]\nname = "image-folder"\npath = "{folder}"\nimage_size = 8\nchannels = 1\n')
    out = CliRunner().invoke(cli, ["data", "pack", "image-folder", "--out", str(tmp_path / "c.pack"),
                                   "--config", str(config), "--no-progress", "--set", "data.image_size=12"])
    assert out.exit_code == 0, out.output
    from gancore.data.pack import open_pack

    assert open_pack(tmp_path / "c.pack").arrays["images"].shape == (48, 1, 12, 12)  # --set over the file
    bad = CliRunner().invoke(cli, ["data", "pack", "image-folder", "--out", str(tmp_path / "d.pack"),
                                   "--set", f"data.path={folder}", "--set", "data.colour=red"])
    assert bad.exit_code == 2 and "data.colour: unknown key" in bad.output


def test_16_bit_grayscale_is_scaled_and_float_images_are_refused(tmp_path):
    from gancore.data.image_folder import read_image
    from gancore.errors import ConfigError

    ramp = (np.arange(16 * 16).reshape(16, 16) * 257).astype(np.uint16)  # 0 .. 65535 in 16 bits
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    pixels = read_image(tmp_path / "deep.png", 16, 1)[0]
    assert pixels.min() == 0 and pixels.max() == 255 and abs(float(pixels.mean()) - 127.5) < 1.5  # not white
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("CMYK").save(tmp_path / "print.jpg")
    assert read_image(tmp_path / "print.jpg", 8, 3).shape == (3, 8, 8)
    Image.fromarray(np.random.default_rng(0).random((8, 8)).astype(np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ConfigError, match="float.tiff holds floating-point pixels"):
        read_image(tmp_path / "float.tiff", 8, 1)


def test_a_folder_streamed_through_worker_processes_trains_like_it_does_in_memory(folder, tmp_path):
    host = load_plugins()
    common = {**TINY, "data.name": "image-folder", "data.path": str(folder), "data.image_size": 16,
              "train.steps": 4}
    in_memory = train(host, make_config(host, "dcgan", common), tmp_path / "memory")
    streamed = train(host, make_config(host, "dcgan", {**common, "data.stream": True, "data.workers": 2}),
                     tmp_path / "streamed")
    a, b = weights(in_memory), weights(streamed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    train(host, make_config(host, "dcgan", {**common, "data.stream": True, "train.steps": 2}), tmp_path / "half")
    resumed = train(host, make_config(host, "dcgan", {**common, "data.stream": True}), tmp_path / "half",
                    resume=True)
    c = weights(resumed)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_random_crops_come_from_the_samplers_generator_and_resume_exactly(folder, tmp_path):
    """crop=random stores load_size images and cuts image_size squares per batch: folder, its pack and a
    streamed folder give the same batches, the pack remembers the crop, and resume is exact."""
    crop = ["--set", "data.crop=random", "--set", "data.load_size=20"]
    assert pack(folder, tmp_path / "c.pack", *crop).exit_code == 0
    info = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "c.pack")])
    assert "[48, 3, 20, 20]" in info.output and "crop_size: 16" in info.output
    host = load_plugins()
    common = {**TINY, "train.steps": 4, "data.image_size": 16}
    folder_run = {"data.name": "image-folder", "data.path": str(folder), "data.crop": "random", "data.load_size": 20}
    runs = {"folder": folder_run, "streamed": {**folder_run, "data.stream": True},
            "pack": {"data.name": "pack", "data.path": str(tmp_path / "c.pack"), "data.image_size": 16}}
    trained = {name: weights(train(host, make_config(host, "dcgan", {**common, **over}), tmp_path / name))
               for name, over in runs.items()}
    for name in ("streamed", "pack"):
        assert all(torch.equal(trained["folder"][k], trained[name][k]) for k in trained["folder"]), name
    from gancore.data.pack_source import Pack, PackSettings

    whole = Pack(PackSettings(path=str(tmp_path / "c.pack"), crop_size=0)).load()
    assert whole.crop_size is None and whole.spec.shape == (3, 20, 20)
    assert Pack(PackSettings(path=str(tmp_path / "c.pack"))).load().spec.shape == (3, 16, 16)
    packed = {**common, **runs["pack"], "data.resident_mb": 0, "data.flip": True}
    straight = weights(train(host, make_config(host, "dcgan", packed), tmp_path / "straight"))
    train(host, make_config(host, "dcgan", {**packed, "train.steps": 2}), tmp_path / "half")
    resumed = weights(train(host, make_config(host, "dcgan", packed), tmp_path / "half", resume=True))
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_the_sampler_cuts_each_image_at_its_own_offset_and_pairs_share_it():
    from gancore.data import TensorData
    from gancore.kernel.sampler import BatchSampler

    x = torch.arange(6 * 1 * 10 * 10, dtype=torch.float32).reshape(6, 1, 10, 10)
    data = TensorData(x=x, x_b=x + 0.5, paired=True, crop_size=4, flip=True)
    assert data.spec.shape == (1, 4, 4)
    sampler = BatchSampler(data, batch_size=6, device=torch.device("cpu"), seed=3)
    batch = sampler.next()
    assert batch.x.shape == (6, 1, 4, 4)
    assert torch.equal(batch.x_b, batch.x + 0.5)  # the same rows, flips and squares for both of a pair
    tops = {int(img.min()) // 10 % 10 for img in batch.x}
    assert len(tops) > 1  # offsets drawn per image
    for img in batch.x:  # each a contiguous 4x4 window of some image (possibly flipped)
        lo = int(img.min())
        window = x.reshape(-1)[lo - lo % 100:][: 100].reshape(10, 10)
        r, c = (lo % 100) // 10, lo % 10
        part = window[r:r + 4, c:c + 4]
        assert torch.equal(img[0], part) or torch.equal(img[0], part.flip(-1))
    centred = data.centred(x)
    assert torch.equal(centred, x[..., 3:7, 3:7])


def test_crop_modes_are_validated_and_none_refuses_non_square_images(folder, tmp_path):
    bad = pack(folder, tmp_path / "n.pack", "--set", "data.crop=none")
    assert bad.exit_code == 2 and "not square" in bad.output and "data.crop" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    wrong = pack(folder, tmp_path / "w.pack", "--set", "data.load_size=24")
    assert wrong.exit_code == 2 and "load_size applies only to crop = 'random'" in wrong.output
    small = pack(folder, tmp_path / "s.pack", "--set", "data.crop=random", "--set", "data.load_size=12")
    assert small.exit_code == 2 and "smaller than image_size" in small.output
    default = pack(folder, tmp_path / "d.pack", "--set", "data.crop=random")
    assert default.exit_code == 0, default.output
    with safe_open(str(tmp_path / "d.pack"), "np") as fh:
        assert fh.get_slice("images").get_shape() == [48, 3, 18, 18]  # 16 x 286/256
