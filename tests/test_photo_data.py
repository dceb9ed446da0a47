"""CelebA and pix2pix's paired layouts, from small files written in their real layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gancore.cli import cli
from gancore.data.celeba import CelebA
from gancore.errors import ConfigError
from gancore.kernel.sampler import BatchSampler
from gancore.translation import Paired


def write_celeba(root: Path, n: int = 6) -> None:
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / name, quality=90)
    attrs = [f"{n}", "Smiling Male"] + [f"{name}  {'1' if i % 2 else '-1'} -1" for i, name in enumerate(names)]
    (root / "list_attr_celeba.txt").write_text("\n".join(attrs) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{name} {i % 3}\n" for i, name in enumerate(names)))


def test_celeba_reads_its_folder_splits_and_attribute_labels(tmp_path):
    write_celeba(tmp_path)
    every = CelebA(CelebA.Config(path=str(tmp_path), image_size=16)).load()
    assert every.x.shape == (6, 3, 16, 16) and every.y is None
    test = CelebA(CelebA.Config(path=str(tmp_path), image_size=16, split="test", label_attribute="Smiling")).load()
    assert test.x.shape == (2, 3, 16, 16) and test.y.tolist() == [0, 1] and test.num_classes == 2  # rows 3 and 6
    cropped = CelebA(CelebA.Config(path=str(tmp_path), image_size=16, crop=108, limit=3)).load()
    assert cropped.x.shape == (3, 3, 16, 16) and not torch.equal(cropped.x, every.x[:3])


def test_celeba_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="no img_align_celeba/.*does not download CelebA"):
        CelebA(CelebA.Config(path=str(tmp_path))).load()
    write_celeba(tmp_path)
    with pytest.raises(ConfigError, match="'Smiles' is not an attribute"):
        CelebA(CelebA.Config(path=str(tmp_path), label_attribute="Smiles")).load()
    with pytest.raises(ConfigError, match="data.crop: 300 is larger"):
        CelebA(CelebA.Config(path=str(tmp_path), crop=300)).load()
    partition = tmp_path / "list_eval_partition.txt"
    partition.write_text("".join(partition.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(ConfigError, match="does not list 000006.jpg.*out of step"):
        CelebA(CelebA.Config(path=str(tmp_path), split="train")).load()


def test_celeba_packs_in_worker_processes_with_its_labels(tmp_path):
    write_celeba(tmp_path / "celeba")
    out = CliRunner().invoke(cli, ["data", "pack", "celeba", "--out", str(tmp_path / "c.pack"), "--workers", "2",
                                   "--set", f"data.path={tmp_path / 'celeba'}", "--set", "data.image_size=16",
                                   "--set", "data.label_attribute=Smiling", "--no-progress"])
    assert out.exit_code == 0, out.output
    from gancore.data.pack import open_pack

    pack = open_pack(tmp_path / "c.pack")
    assert pack.arrays["images"].shape == (6, 3, 16, 16) and pack.arrays["labels"].tolist() == [0, 1, 0, 1, 0, 1]
    direct = CelebA(CelebA.Config(path=str(tmp_path / "celeba"), image_size=16)).load()
    assert torch.equal(torch.from_numpy(np.asarray(pack.arrays["images"])).float() / 127.5 - 1, direct.x)


def write_pairs(root: Path, n: int = 10, width: int = 32) -> None:
    """A|B images whose halves hold the same value i (B brighter by 100), so partners can be told."""
    (root / "train").mkdir(parents=True)
    for i in range(n):
        a = np.full((16, width // 2, 3), 10 * i, dtype=np.uint8)
        a[:, :3] = 255  # a mark on the left: flips show
        b = a.copy()
        b[:, 3:] += 100
        Image.fromarray(np.concatenate([a, b], axis=1)).save(root / "train" / f"{i:03d}.png")


def test_paired_side_by_side_images_keep_their_partners_through_batches_and_flips(tmp_path):
    write_pairs(tmp_path)
    data = Paired(Paired.Config(path=str(tmp_path), image_size=16)).load()
    assert data.paired and data.x.shape == data.x_b.shape == (10, 3, 16, 16)
    sampler = BatchSampler(data, 4, torch.device("cpu"), seed=0)
    for _ in range(6):
        batch = sampler.next()
        # the same flip on both: the mark sits on the same side of the input and of its partner
        assert torch.equal(batch.x[:, :, :, 0] == 1, batch.x_b[:, :, :, 0] == 1)
        assert torch.allclose(batch.x_b[:, :, 8, 8] - batch.x[:, :, 8, 8], torch.full((4, 3), 100 / 127.5),
                              atol=1e-5)
    swapped = Paired(Paired.Config(path=str(tmp_path), image_size=16, direction="b2a")).load()
    assert torch.equal(swapped.x, data.x_b) and torch.equal(swapped.x_b, data.x)


def test_paired_folders_and_their_mistakes(tmp_path):
    for side in ("A", "B"):
        (tmp_path / side / "train").mkdir(parents=True)
        for name in ("x1.png", "x2.png"):
            Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / side / "train" / name)
    assert Paired(Paired.Config(path=str(tmp_path), image_size=8)).load().x.shape == (2, 3, 8, 8)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "B" / "train" / "x3.png")
    with pytest.raises(ConfigError, match="x3.png has no partner"):
        Paired(Paired.Config(path=str(tmp_path), image_size=8)).load()
    odd = tmp_path / "odd"
    (odd / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 17, 3), dtype=np.uint8)).save(odd / "train" / "a.png")
    with pytest.raises(ConfigError, match="a.png is 17 pixels wide"):
        Paired(Paired.Config(path=str(odd), image_size=8)).load()


def test_a_paired_pack_trains_a_translation_variant(tmp_path):
    write_pairs(tmp_path / "pairs", n=12)
    packed = CliRunner().invoke(cli, ["data", "pack", "paired", "--out", str(tmp_path / "p.pack"), "--no-progress",
                                      "--set", f"data.path={tmp_path / 'pairs'}", "--set", "data.image_size=16"])
    assert packed.exit_code == 0, packed.output
    info = CliRunner().invoke(cli, ["data", "info", str(tmp_path / "p.pack")])
    assert "paired: True" in info.output and "array images_b: uint8 [12, 3, 16, 16]" in info.output
    run = CliRunner().invoke(cli, ["run", "cyclegan", "--out", str(tmp_path / "run"), "--set", "data.name=pack",
                                   "--set", f"data.path={tmp_path / 'p.pack'}", "--set", "train.steps=2",
                                   "--set", "train.batch_size=4", "--set", "log.progress=false",
                                   "--set", "variant.orient=off"])
    assert run.exit_code == 0, run.output


def write_stylegan_zip(path: Path, n: int = 6, labels: bool = True) -> None:
    """The layout of stylegan2-ada-pytorch's dataset_tool.py: 00000/img00000000.png ... and dataset.json."""
    import io
    import json
    import zipfile

    rng = np.random.default_rng(3)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        names = []
        for i in range(n):
            name = f"{i // 1000:05d}/img{i:08d}.png"
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buffer, format="png")
            archive.writestr(name, buffer.getvalue())
            names.append(name)
        table = [[name, i % 3] for i, name in enumerate(names)] if labels else None
        archive.writestr("dataset.json", json.dumps({"labels": table}))


def test_stylegan_zips_read_their_labels_and_pack_in_workers(tmp_path):
    from gancore.data.stylegan_zip import StyleGANZip

    write_stylegan_zip(tmp_path / "ds.zip")
    data = StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "ds.zip"), image_size=16)).load()
    assert data.x.shape == (6, 3, 16, 16) and data.y.tolist() == [0, 1, 2, 0, 1, 2] and data.num_classes == 3
    packed = CliRunner().invoke(cli, ["data", "pack", "stylegan-zip", "--out", str(tmp_path / "z.pack"),
                                      "--workers", "2", "--no-progress", "--set", f"data.path={tmp_path / 'ds.zip'}",
                                      "--set", "data.image_size=16"])
    assert packed.exit_code == 0, packed.output
    from gancore.data.pack import open_pack

    pack = open_pack(tmp_path / "z.pack")
    assert torch.equal(torch.from_numpy(np.asarray(pack.arrays["images"])).float() / 127.5 - 1, data.x)
    write_stylegan_zip(tmp_path / "plain.zip", labels=False)
    assert StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "plain.zip"), image_size=8)).load().y is None


def test_stylegan_zip_mistakes_are_one_line_errors(tmp_path):
    import json
    import zipfile

    from gancore.data.stylegan_zip import StyleGANZip

    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="junk.zip is not a readable zip"):
        StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "junk.zip"))).load()
    write_stylegan_zip(tmp_path / "ds.zip", n=3)
    with zipfile.ZipFile(tmp_path / "ds.zip", "a") as archive:
        archive.writestr("00000/img00000099.png", b"broken")
    with pytest.raises(ConfigError, match="no label for 00000/img00000099.png.*out of step"):
        StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "ds.zip"))).load()
    with zipfile.ZipFile(tmp_path / "nolabels.zip", "w") as archive:
        archive.writestr("a.png", b"broken")
        archive.writestr("dataset.json", json.dumps({"labels": None}))
    with pytest.raises(ConfigError, match=r"cannot read image .*nolabels.zip:a.png"):
        StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "nolabels.zip"))).load()


def test_celeba_and_stylegan_zips_stream_the_same_images(tmp_path):
    from gancore.data.stylegan_zip import StyleGANZip

    write_celeba(tmp_path / "celeba")
    direct = CelebA(CelebA.Config(path=str(tmp_path / "celeba"), image_size=16)).load()
    streamed = CelebA(CelebA.Config(path=str(tmp_path / "celeba"), image_size=16, stream=True, workers=1)).load()
    assert len(streamed) == 6 and torch.equal(streamed.decoded(streamed.x[:6]), direct.x)
    write_stylegan_zip(tmp_path / "ds.zip")
    zipped = StyleGANZip(StyleGANZip.Config(path=str(tmp_path / "ds.zip"), image_size=16, stream=True)).load()
    sampler = BatchSampler(zipped, 4, torch.device("cpu"), seed=0)
    batch = sampler.next()  # gathered by the worker processes
    sampler.close()
    first = torch.randperm(6, generator=torch.Generator().manual_seed(0))[:4]  # the sampler's first draw
    assert batch.x.shape == (4, 3, 16, 16) and batch.y.tolist() == [i % 3 for i in first.tolist()]
    assert torch.equal(batch.x, zipped.decoded(zipped.x[first]))
