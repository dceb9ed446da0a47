"""stylegan2-ada-pytorch's dataset zips (``dataset_tool.py``'s output), read without unpacking.

A zip of images (``00000/img00000000.png``, ...) with an optional ``dataset.json`` of
``{"labels": [["00000/img00000000.png", 6], ...]}`` (or ``"labels": null``). Images are decoded
straight from the archive (centre square, Lanczos resize to ``image_size``), in worker processes
for ``gancore data pack stylegan-zip``.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
from pydantic import Field

from gancore.data import DataSource, DecodePlan, TensorData
from gancore.data.file_rows import FileImageSettings, plan_data
from gancore.data.image_folder import IMAGE_SUFFIXES, read_image
from gancore.errors import ConfigError

_OPEN: dict[str, zipfile.ZipFile] = {}  # one open archive per process (reading its directory once)


#: What reading a zip member can raise: a damaged archive, a bad CRC, an encrypted member, a method zipfile
#: lacks (deflate64), corrupt deflate bytes.
ZIP_ERRORS = (KeyError, zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, zlib.error, EOFError,
              ValueError)


def read_member(member: str, archive: str, size: int, channels: int) -> np.ndarray:
    """One image of the archive as uint8 ``[C, H, W]``."""
    try:
        if archive not in _OPEN:
            _OPEN[archive] = zipfile.ZipFile(archive)
        data = _OPEN[archive].read(member)
    except ZIP_ERRORS as exc:  # encrypted (RuntimeError), deflate64 (NotImplementedError), corrupt (zlib, CRC)
        raise ConfigError(f"data.path: cannot read {member} from {archive}: {exc}") from None
    return read_image(io.BytesIO(data), size, channels, name=f"{archive}:{member}")  # type: ignore[arg-type]


class StyleGANZipSettings(FileImageSettings):
    path: str = Field(..., description="A dataset zip written by stylegan2-ada-pytorch's dataset_tool.py.")
    use_labels: bool = Field(True, description="Use dataset.json's labels when the zip has them.")


class StyleGANZip(DataSource):
    """A stylegan2-ada dataset zip, with its dataset.json labels."""

    name = "stylegan-zip"
    Config = StyleGANZipSettings

    def decode_plan(self) -> DecodePlan:
        path = Path(self.config.path).expanduser()
        try:
            with zipfile.ZipFile(path) as archive:
                names = sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
                meta = json.loads(archive.read("dataset.json")) if "dataset.json" in archive.namelist() else {}
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ConfigError(f"data.path: {path}: dataset.json is not JSON: {exc}") from None
        except ZIP_ERRORS as exc:
            raise ConfigError(f"data.path: {path} is not a readable zip: {exc}") from None
        if not names:
            raise ConfigError(f"data.path: {path} holds no images")
        labels = None
        raw = meta.get("labels") if isinstance(meta, dict) else None
        if raw is not None and self.config.use_labels:
            from gancore.limits import MAX_CLASSES

            try:
                table = {str(name): label for name, label in raw}
            except (TypeError, ValueError):
                raise ConfigError(f"data.path: {path}: dataset.json's labels are not [name, class] pairs") from None
            for name, label in table.items():  # a class index: 1.7, true or 2**40 is not one
                if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < MAX_CLASSES:
                    raise ConfigError(f"data.path: {path}: dataset.json labels {name} {json.dumps(label)[:40]}; "
                                      f"expected a whole class index within 0..{MAX_CLASSES - 1}")
            missing = [n for n in names if n not in table]
            if missing:
                raise ConfigError(f"data.path: {path}: dataset.json has no label for {missing[0]} "
                                  f"({len(missing)} images): the labels are out of step with the images")
            labels = [table[n] for n in names]
        c = self.config
        return DecodePlan(files=names, labels=labels, num_classes=max(labels) + 1 if labels else 0,
                          decode=functools.partial(read_member, archive=str(path), size=c.image_size,
                                                   channels=c.channels),
                          shape=(c.channels, c.image_size, c.image_size), crop="centre square",
                          resize_filter="lanczos")

    def load(self) -> TensorData:
        return plan_data(self.decode_plan(), self.config)
