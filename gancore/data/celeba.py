"""CelebA (Liu et al. 2015) from the files its download unpacks to (never downloaded).

``data.path`` is the folder holding ``img_align_celeba/`` (202,599 JPEGs of 178x218), optionally with
``list_attr_celeba.txt`` (40 binary attributes; ``label_attribute`` makes one of them the label)
and ``list_eval_partition.txt`` (0 train, 1 validation, 2 test). Each image is centre-cropped
(``crop`` pixels square, 0: the largest square) and resized (Lanczos) to ``image_size``. It is
file-backed: ``gancore data pack celeba`` decodes it in worker processes with flat memory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field

from gancore.data import DataSource, DecodePlan, TensorData
from gancore.data.file_rows import FileImageSettings, plan_data
from gancore.data.image_folder import IMAGE_SUFFIXES, read_image
from gancore.errors import ConfigError

SPLITS = {"train": "0", "val": "1", "test": "2"}


class CelebASettings(FileImageSettings):
    path: str = Field(..., description="The folder holding img_align_celeba/ (and the list_*.txt files).")
    image_size: int = Field(64, ge=8, le=1024, description="Side of the square images, pixels.")
    crop: int = Field(0, ge=0, le=65536, description="Side of the centre crop before resizing; 0: the largest square "
                                           "(178); 108 or 140 are the crops of many GAN papers.")
    split: Literal["all", "train", "val", "test"] = Field(
        "all", description="all, or a split of list_eval_partition.txt (train, val, test).")
    label_attribute: str | None = Field(
        None, description="An attribute of list_attr_celeba.txt (e.g. Smiling) as the label (0: -1, 1: 1); "
                          "null: unlabelled.")
    limit: int | None = Field(None, ge=1, le=10**9,
                              description="Only the first N images (after the split), for a quick run.")


class CelebA(DataSource):
    """CelebA's aligned faces, with optional attribute labels and the official splits."""

    name = "celeba"
    Config = CelebASettings

    def _root(self) -> tuple[Path, Path]:
        root = Path(self.config.path).expanduser()
        images = root / "img_align_celeba"
        if (images / "img_align_celeba").is_dir():  # the zip unpacked into a folder of its own name
            images = images / "img_align_celeba"
        if not images.is_dir():
            raise ConfigError(f"data.path: no img_align_celeba/ in {root}; gancore does not download CelebA: get "
                              "img_align_celeba.zip (and list_attr_celeba.txt, list_eval_partition.txt) from "
                              "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and unpack it there")
        return root, images

    def _table(self, path: Path, columns: int | None) -> dict[str, list[str]]:
        rows: dict[str, list[str]] = {}
        for number, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts or not parts[0].lower().endswith(tuple(IMAGE_SUFFIXES)):
                continue  # the attribute file's count and header lines
            if columns is not None and len(parts) != columns + 1:
                raise ConfigError(f"data.path: {path} line {number} has {len(parts) - 1} values, expected {columns}")
            rows[parts[0]] = parts[1:]
        return rows

    def _selection(self) -> tuple[list[Path], list[int] | None]:
        root, folder = self._root()
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"data.path: {folder} holds no images")
        c = self.config
        if c.split != "all":
            table = root / "list_eval_partition.txt"
            if not table.is_file():
                raise ConfigError(f"data.split: {c.split} needs {table} (from CelebA's Eval folder)")
            split = self._table(table, 1)
            missing = [f.name for f in files if f.name not in split]
            if missing:
                raise ConfigError(f"data.path: {table} does not list {missing[0]} ({len(missing)} images unlisted): "
                                  "the partition file is out of step with the images")
            files = [f for f in files if split[f.name][0] == SPLITS[c.split]]
        labels = None
        if c.label_attribute is not None:
            table = root / "list_attr_celeba.txt"
            if not table.is_file():
                raise ConfigError(f"data.label_attribute: needs {table} (from CelebA's Anno folder)")
            lines = table.read_text().splitlines()
            names = lines[1].split() if len(lines) > 1 else []
            if c.label_attribute not in names:
                raise ConfigError(f"data.label_attribute: {c.label_attribute!r} is not an attribute of {table} "
                                  f"({', '.join(names[:6])}, ...)")
            column = names.index(c.label_attribute)
            attrs = self._table(table, len(names))
            missing = [f.name for f in files if f.name not in attrs]
            if missing:
                raise ConfigError(f"data.path: {table} has no row for {missing[0]} ({len(missing)} images): the "
                                  "attribute file is out of step with the images")
            labels = [1 if attrs[f.name][column] == "1" else 0 for f in files]
        if c.limit is not None:
            files = files[: c.limit]
            labels = labels[: c.limit] if labels is not None else None
        return files, labels

    def decode_plan(self) -> DecodePlan:
        files, labels = self._selection()
        c = self.config
        return DecodePlan(files=files, labels=labels, num_classes=2 if labels is not None else 0,
                          decode=functools.partial(read_image, size=c.image_size, channels=c.channels, crop=c.crop),
                          shape=(c.channels, c.image_size, c.image_size),
                          crop=f"centre {c.crop or 'largest'} square", resize_filter="lanczos")

    def load(self) -> TensorData:
        return plan_data(self.decode_plan(), self.config)
