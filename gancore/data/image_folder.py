"""Any folder of images, with optional class subfolders."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from gancore.data import CropSettings, DataSource, DecodePlan, TensorData
from gancore.data.file_rows import FileImageSettings, plan_data
from gancore.errors import ConfigError
from gancore.lazy import lazy_module

torch = lazy_module("torch")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class ImageFolderSettings(FileImageSettings, CropSettings):
    path: str = Field(..., description="Folder of images; class subfolders give labels.")
    layout: Literal["auto", "flat", "classes"] = Field(
        "auto", description="auto: the images at the top of path, or (when there are none) each subfolder a class; "
                            "a folder with both is refused. flat: the top-level images only (subfolders ignored); "
                            "classes: each subfolder a class (top-level images ignored). Hidden folders and "
                            "files and __MACOSX are always ignored.")


def read_image(path: Path, size: int, channels: int, crop: int = 0,
               box: tuple[float, float] | None = None, name: str | None = None,
               square_only: bool = False) -> np.ndarray:
    """Read one image as uint8 ``[C, H, W]``: a centre crop (``crop`` pixels square; 0: the largest
    square), resized (Lanczos) to ``size``. ``box`` = (left, right) as fractions of the width reads
    part of the image first (pix2pix's A|B halves); ``square_only`` refuses images that are not square
    (``crop = 'none'``). Errors name the file (``name`` when ``path`` is an open file object, such as a
    member of an archive)."""
    from PIL import Image, UnidentifiedImageError

    where = name or path
    Image.MAX_IMAGE_PIXELS = max_image_pixels()
    try:
        with Image.open(path) as img:
            img.load()
            if box is not None:
                w, h = img.size
                if w % 2:
                    raise ConfigError(f"data.path: {where} is {w} pixels wide; A|B images split at half width "
                                      "need an even width")
                img = img.crop((int(box[0] * w), 0, int(box[1] * w), h))
            img = to_8bit(img, where).convert("L" if channels == 1 else "RGB")
            w, h = img.size
            if square_only and w != h:
                raise ConfigError(f"data.path: {where} is {w}x{h}, not square (data.crop = 'none' takes square "
                                  "images only; 'centre' cuts the largest centred square)")
            side = min(w, h) if crop <= 0 else crop
            if side > min(w, h):
                raise ConfigError(f"data.crop: {crop} is larger than {where} ({w}x{h})")
            left, top = (w - side) // 2, (h - side) // 2
            img = img.crop((left, top, left + side, top + side))
            img = img.resize((size, size), Image.Resampling.LANCZOS)
            arr = np.array(img, dtype=np.uint8)  # a writable copy (torch.from_numpy wants one)
    except Image.DecompressionBombError as exc:
        raise ConfigError(f"data.path: {where} is too large to decode safely ({exc}); set {MAX_PIXELS_ENV}=N "
                          f"(now {max_image_pixels():,}; Pillow refuses twice that) to raise it for images you "
                          "trust") from None
    except ConfigError:
        raise
    except MemoryError:
        raise ConfigError(f"data.path: cannot read image {where}: it does not fit in memory") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise anything (SyntaxError, zlib, struct, ...)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "" if isinstance(exc, UnidentifiedImageError | OSError) else f"{type(exc).__name__}: "
        raise ConfigError(f"data.path: cannot read image {where}: {kind}{message}") from None
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


MAX_PIXELS_ENV = "GANCORE_MAX_IMAGE_PIXELS"
#: Pillow's own limit (about 179 megapixels): an image past it is refused as a possible decompression bomb.
DEFAULT_MAX_PIXELS = 178_956_970


def max_image_pixels() -> int:
    """The largest image (in pixels) gancore decodes: ``GANCORE_MAX_IMAGE_PIXELS`` or Pillow's default."""
    import os

    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{MAX_PIXELS_ENV}: expected a positive number of pixels, got {text!r}")
    return int(text)


def to_8bit(img: object, path: Path) -> object:
    """8-bit pixels from any mode Pillow opens: 16-bit grayscale is scaled down (Pillow's own
    conversion clips it to near white); float images, whose range no file states, are refused."""
    from PIL import Image

    mode = img.mode  # type: ignore[attr-defined]
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or wide.max() > 255 else 255.0
        return Image.fromarray(np.clip(np.rint(wide * (255.0 / top)), 0, 255).astype(np.uint8), mode="L")
    if mode == "F":
        raise ConfigError(f"data.path: {path} holds floating-point pixels, whose range the file does not state; "
                          "convert it to 8 or 16 bits per channel")
    return img


def load_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """Read one image: centre-crop to a square, resize (Lanczos), scale to [-1, 1], [C, H, W]."""
    return TensorData.decoded(torch.from_numpy(read_image(path, size, channels)))


#: Folders that archivers and tools leave beside images (besides any hidden one, whose name starts with ".").
JUNK_FOLDERS = frozenset({"__MACOSX"})


def ignored(entry: Path) -> bool:
    """Hidden entries (``.ipynb_checkpoints``, ``.DS_Store``, macOS's ``._name`` files) and known junk."""
    return entry.name.startswith(".") or entry.name in JUNK_FOLDERS


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (regular files with an image suffix, not hidden)."""
    return sorted(p for p in folder.iterdir()
                  if not ignored(p) and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


class ImageFolder(DataSource):
    """Images from ``path``; if it holds only subfolders, each subfolder is a class."""

    name = "image-folder"
    Config = ImageFolderSettings

    def decode_plan(self) -> DecodePlan:
        """The files to decode and how, for ``gancore data pack`` (decoded in worker processes)."""
        files, classes, notes = self._layout()
        labels = [label for label, _ in files] if classes else None
        c = self.config
        side = c.stored_size(c.image_size)
        return DecodePlan(files=[f for _, f in files], labels=labels, num_classes=len(classes),
                          decode=functools.partial(read_image, size=side, channels=c.channels,
                                                   square_only=c.crop == "none"),
                          shape=(c.channels, side, side), crop=c.crop_label(c.image_size), resize_filter="lanczos",
                          crop_size=c.crop_size(c.image_size), notes=notes)

    def _layout(self) -> tuple[list[tuple[int, Path]], list[Path], list[str]]:
        """(label, file) pairs, the class folders, and notes on what was left out (``data.layout``)."""
        root = Path(self.config.path).expanduser()
        if not root.is_dir():
            raise ConfigError(f"data.path: {root} is not a folder")
        entries = sorted(root.iterdir())
        junk = [e.name for e in entries if ignored(e) and e.is_dir()]
        folders = [e for e in entries if not ignored(e) and e.is_dir()]
        top = image_files(root)
        layout = self.config.layout
        notes = [f"data.path: ignored {', '.join(junk)} in {root} (hidden or archive folders)"] if junk else []
        if layout == "auto" and top and folders:
            counts = ", ".join(f"{f.name}: {_count(len(image_files(f)), 'image')}" for f in folders[:5])
            more = f", +{len(folders) - 5} more" if len(folders) > 5 else ""
            raise ConfigError(f"data.path: {root} holds {_count(len(top), 'image')} at its top level and "
                              f"{_count(len(folders), 'subfolder')} ({counts}{more}); set data.layout = 'flat' (the "
                              "top-level images, subfolders ignored) or 'classes' (each subfolder a class)")
        if layout == "flat" or (layout == "auto" and not folders):
            if folders:
                notes.append(f"data.path: ignored {_count(len(folders), 'subfolder')} of {root} "
                             f"({', '.join(f.name for f in folders[:5])}{', ...' if len(folders) > 5 else ''}; "
                             "data.layout = 'flat')")
            files = [(0, f) for f in top]
            classes: list[Path] = []
        else:
            if top:
                notes.append(f"data.path: ignored the {_count(len(top), 'image')} at the top level of {root} "
                             "(data.layout = 'classes')")
            classes = folders
            files = []
            for label, folder in enumerate(classes):
                found = image_files(folder)
                if not found:
                    raise ConfigError(f"data.path: class folder {folder} holds no images "
                                      f"({', '.join(sorted(IMAGE_SUFFIXES))}); remove it, or set data.layout = 'flat'")
                files += [(label, f) for f in found]
        if not files:
            raise ConfigError(
                f"data.path: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {root}"
            )
        return files, classes, notes

    def load(self) -> TensorData:
        return plan_data(self.decode_plan(), self.config)
