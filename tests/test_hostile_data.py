"""Issue 29's data families: every decoder error is one line naming the file (run, translate, pack);
``data.skip_bad`` leaves bad files out when training without a pack; the image-folder layout rules
(hidden folders and ``__MACOSX`` ignored and said so, top-level images beside subfolders refused with both
counts, ``data.layout`` to choose); property: any byte flip in a small PNG decodes or is one line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gancore.cli import cli
from gancore.data.image_folder import ImageFolder, read_image
from gancore.errors import ConfigError

RUN = ["--set", "train.steps=1", "--set", "train.batch_size=4", "--set", "data.image_size=16",
       "--set", "variant.generator_width=8", "--set", "variant.critic_width=8", "--set", "log.progress=false",
       "--set", "log.sample_every=0", "--set", "data.channels=1"]


def _png(seed: int = 0, side: int = 12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (side, side), dtype=np.uint8), mode="L").save(
        buf, format="PNG")
    return buf.getvalue()


def _folder(root, n: int, start: int = 0):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / f"img{i:02d}.png").write_bytes(_png(i))
    return root


def _broken_png() -> bytes:
    """A PNG whose one flipped byte (a chunk's length) makes Pillow raise ``SyntaxError: broken PNG file``."""
    data = bytearray(_png())
    data[36] ^= 0xFF
    return bytes(data)


def _load(path, **kw):
    return ImageFolder(ImageFolder.Config(path=str(path), image_size=8, channels=1, **kw)).load()


def test_a_broken_png_is_one_line_from_run_and_translate_and_pack(tmp_path):
    folder = _folder(tmp_path / "imgs", 6)
    (folder / "img03.png").write_bytes(_broken_png())
    with pytest.raises(SyntaxError):  # what Pillow itself raises for this file
        Image.open(io.BytesIO(_broken_png())).load()
    runner = CliRunner()
    run = runner.invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--set", "data.name=image-folder",
                              "--set", f"data.path={folder}", *RUN])
    assert run.exit_code == 2, run.output
    line = run.output.strip().splitlines()[-1]
    assert line.startswith(f"gancore: error: data.path: cannot read image {folder / 'img03.png'}: SyntaxError:")
    pack = runner.invoke(cli, ["data", "pack", "image-folder", "--out", str(tmp_path / "p.pack"), "--set",
                               f"data.path={folder}", "--set", "data.image_size=8", "--set", "data.channels=1",
                               "--no-progress"])
    assert pack.exit_code == 2 and "img03.png" in pack.output.strip().splitlines()[-1]
    # translate reads its input through the same decoder
    trained = runner.invoke(cli, ["run", "cyclegan", "--out", str(tmp_path / "cy"), "--set", "train.steps=1",
                                  "--set", "train.batch_size=2", "--set", "data.image_size=16", "--set",
                                  "variant.generator_width=4", "--set", "variant.critic_width=4", "--set",
                                  "variant.residual_blocks=1", "--set", "variant.orient=off", "--set",
                                  "log.progress=false", "--set", "log.sample_every=0"])
    assert trained.exit_code == 0, trained.output
    bad = tmp_path / "in.png"
    bad.write_bytes(_broken_png())
    out = runner.invoke(cli, ["translate", str(tmp_path / "cy"), "--input", str(bad), "--out",
                              str(tmp_path / "o.png")])
    assert out.exit_code == 2 and "Traceback" not in out.output
    assert out.output.strip().splitlines()[-1].startswith(f"gancore: error: data.path: cannot read image {bad}")
    assert not (tmp_path / "o.png").exists()
    # the output is never the input of the same command
    good = _folder(tmp_path / "good", 3)
    before = {f.name: f.read_bytes() for f in good.iterdir()}
    same = runner.invoke(cli, ["translate", str(tmp_path / "cy"), "--input", str(good), "--out", str(good)])
    assert same.exit_code == 2 and same.output.strip().splitlines()[-1] == (
        f"gancore: error: --out: {good} is the --input folder; the translations would replace the images they are "
        "made from (choose another --out)")
    assert {f.name: f.read_bytes() for f in good.iterdir()} == before
    one = runner.invoke(cli, ["translate", str(tmp_path / "cy"), "--input", str(good / "img00.png"), "--out",
                              str(good / "." / "img00.png")])
    assert one.exit_code == 2 and "is the --input file" in one.output
    # tensors in [-1, 1] only: pixels of 0..255 are not translated as they are
    import numpy as np

    np.save(tmp_path / "pixels.npy", np.full((2, 1, 16, 16), 200, dtype=np.float32))
    wide = runner.invoke(cli, ["translate", str(tmp_path / "cy"), "--input", str(tmp_path / "pixels.npy"), "--out",
                               str(tmp_path / "t.npy")])
    assert wide.exit_code == 2 and wide.output.strip().splitlines()[-1] == (
        f"gancore: error: --input: {tmp_path / 'pixels.npy'} holds values from 200 to 200; expected images in "
        "[-1, 1] (pixels p of 0..255 are p / 127.5 - 1)") and not (tmp_path / "t.npy").exists()


def test_skip_bad_leaves_the_bad_files_out_of_a_run_and_names_them(tmp_path):
    folder = _folder(tmp_path / "imgs", 6)
    (folder / "img01.png").write_bytes(_broken_png())
    (folder / "img04.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    data = _load(folder, skip_bad=True)
    assert len(data) == 4
    assert [n.split(":")[0] for n in data.notes] == ["data.skip_bad"] * 2
    assert "img01.png" in data.notes[0] and "img04.png" in data.notes[1]
    streamed = _load(folder, skip_bad=True, stream=True, workers=1)
    assert len(streamed) == 4 and streamed.notes == data.notes
    run = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--set", "data.name=image-folder",
                                   "--set", f"data.path={folder}", "--set", "data.skip_bad=true", *RUN])
    assert run.exit_code == 0, run.output
    assert "note: data.skip_bad: skipped cannot read image" in run.output
    for i in range(6):
        (folder / f"img{i:02d}.png").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="data.path: none of the 6 images decodes"):
        _load(folder, skip_bad=True)


def test_hidden_and_archive_folders_are_ignored_and_said_so(tmp_path):
    folder = _folder(tmp_path / "imgs", 20)
    _folder(folder / ".ipynb_checkpoints", 4)
    _folder(folder / "__MACOSX", 4)
    (folder / "._img00.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS's resource fork files
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    data = _load(folder)
    assert len(data) == 20 and data.y is None
    assert data.notes == [f"data.path: ignored .ipynb_checkpoints, __MACOSX in {folder} (hidden or archive folders)"]
    pack = CliRunner().invoke(cli, ["data", "pack", "image-folder", "--out", str(tmp_path / "p.pack"), "--set",
                                    f"data.path={folder}", "--set", "data.image_size=8", "--set", "data.channels=1",
                                    "--no-progress"])
    assert pack.exit_code == 0, pack.output
    assert "note: data.path: ignored .ipynb_checkpoints, __MACOSX" in pack.output
    assert "packed 20 images" in pack.output


def test_top_level_images_beside_a_subfolder_are_refused_naming_both_counts(tmp_path):
    folder = _folder(tmp_path / "imgs", 20)
    _folder(folder / "thumbnails", 4)
    with pytest.raises(ConfigError) as caught:
        _load(folder)
    assert str(caught.value) == (
        f"data.path: {folder} holds 20 images at its top level and 1 subfolder (thumbnails: 4 images); set "
        "data.layout = 'flat' (the top-level images, subfolders ignored) or 'classes' (each subfolder a class)")
    flat = _load(folder, layout="flat")
    assert len(flat) == 20 and flat.y is None and "ignored 1 subfolder" in flat.notes[0]
    classes = _load(folder, layout="classes")
    assert len(classes) == 4 and classes.num_classes == 1 and "ignored the 20 images" in classes.notes[0]
    run = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--set", "data.name=image-folder",
                                   "--set", f"data.path={folder}", *RUN])
    assert run.exit_code == 2 and "holds 20 images at its top level and 1 subfolder" in run.output
    assert not (tmp_path / "run").exists()


def test_only_files_are_images_and_an_empty_class_folder_is_named(tmp_path):
    folder = _folder(tmp_path / "imgs", 5)
    (folder / "x.png").mkdir()  # a folder named like an image
    with pytest.raises(ConfigError, match=r"holds 5 images at its top level and 1 subfolder \(x.png: 0 images\)"):
        _load(folder)
    assert len(_load(folder, layout="flat")) == 5
    classes = tmp_path / "classes"
    _folder(classes / "a", 2)
    (classes / "b").mkdir()
    with pytest.raises(ConfigError, match=r"data.path: class folder .*b holds no images"):
        _load(classes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(0, len(_png()) - 1), mask=st.integers(1, 255))
def test_any_byte_flip_in_a_png_decodes_or_is_one_line(tmp_path, position, mask):
    data = bytearray(_png())
    data[position] ^= mask
    path = tmp_path / "f.png"
    path.write_bytes(bytes(data))
    try:
        image = read_image(path, 8, 1)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"data.path: cannot read image {path}: ") and "\n" not in message
    else:
        assert image.shape == (1, 8, 8) and image.dtype == np.uint8


@pytest.mark.parametrize(("content", "message"), [
    ('{"data": [1, 2]}', "'data' must be a table of the source's settings, found [1, 2]"),
    ('{"data": "digits"}', "'data' must be a table of the source's settings"),
    ('{"data": {"name": "celeba"}}', "data.name is \"celeba\", but SOURCE is 'digits'"),
])
def test_data_pack_config_that_is_not_the_sources_settings_is_one_line(tmp_path, content, message):
    (tmp_path / "c.json").write_text(content)
    result = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(tmp_path / "d.pack"), "--config",
                                      str(tmp_path / "c.json"), "--no-progress"])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "d.pack").exists(), result.output


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_nproc_with_a_cuda_device_that_is_not_there_is_one_line_before_any_process(tmp_path):
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--nproc", "2",
                                      "--set", "train.device=cuda", "--set", "train.steps=1"])
    assert result.exit_code == 2 and result.output.strip() == (
        "gancore: error: train.device: cuda was asked for but no CUDA device is available")
    assert not (tmp_path / "run").exists()
