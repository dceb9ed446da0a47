"""Loading a trained generator from a checkpoint and writing its samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gancore.codes import codes_from_json, codes_of, first_categorical
from gancore.config import resolve
from gancore.errors import CheckpointError, ConfigError
from gancore.files import atomic_path
from gancore.kernel.build import BuiltRun, build_run
from gancore.kernel.checkpoint import Checkpoint, find_checkpoint, read_checkpoint
from gancore.kernel.drawing import draw_samples, translate_chunks
from gancore.kernel.precision import resolve_device
from gancore.kernel.state import data_spec, load_networks
from gancore.labels import balanced_labels, check_labels, class_rows
from gancore.plugins import PluginHost
from gancore.visualize import save_samples


def load_model(host: PluginHost, source: str | Path, device: str = "cpu") -> tuple[BuiltRun, Checkpoint]:
    """Rebuild a run's networks from a checkpoint (its config and data spec are inside it)."""
    ckpt = read_checkpoint(find_checkpoint(source))
    spec = data_spec(ckpt)
    try:
        cfg = resolve(host, ckpt.config, stored_spec=spec)  # the stored data spec is enough: no data source
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt.path}: its config does not resolve here: {exc}") from None
    built = build_run(cfg, spec, resolve_device(device, "--device"))
    load_networks(ckpt, built)
    check_codes(ckpt, built)
    return built, ckpt


def sample_labels(model: BuiltRun, n: int, label: int | None = None, by_class: bool = False) -> Tensor | None:
    """The labels to sample with: all ``label``, ``by_class`` rows, or balanced; None if unconditional."""
    variant = model.variant
    if not variant.conditional:
        if label is not None or by_class:
            raise ConfigError(f"--label/--grid-by-class: variant {variant.name!r} is not conditional")
        return None
    classes = variant.data.num_classes
    if label is not None:
        return check_labels(torch.full((n,), label), classes, "--label")
    if by_class:
        return class_rows(max(1, n // classes), classes)
    return balanced_labels(n, classes)


def sample_codes(model: BuiltRun, n: int, code: int | None) -> dict[str, Tensor] | None:
    """``--code K``: the generator's first categorical code fixed to K for ``n`` samples (None
    without ``--code``); a run whose generator has no categorical code is a one-line error."""
    if code is None:
        return None
    spec = first_categorical(codes_of(model.nets.generator))
    if spec is None:
        raise ConfigError(f"--code: variant {model.variant.name!r} has no categorical code "
                          "(only InfoGAN-style generators take codes)")
    if not 0 <= code < spec.size:
        raise ConfigError(f"--code: code {spec.name!r} has classes 0..{spec.size - 1}, got {code}")
    return {spec.name: torch.full((n,), code, dtype=torch.long)}


def check_codes(ckpt: Checkpoint, built: BuiltRun) -> None:
    """The codes the checkpoint recorded (metadata ``codes``) are the ones the rebuilt generator takes."""
    check_codes_match(ckpt.metadata.get("codes"), built, ckpt.path)


def check_codes_match(recorded_json: str | None, built: BuiltRun, path: Path) -> None:
    """The codes a file recorded (``codes`` JSON, None for none) are the ones the rebuilt generator takes."""
    try:
        recorded = codes_from_json(recorded_json) if recorded_json else ()
    except ValueError as exc:
        raise CheckpointError(f"{path}: 'codes': {exc}") from None
    built_codes = codes_of(built.nets.generator)
    if recorded != built_codes:
        names = ", ".join(c.name for c in built_codes) or "none"
        raise CheckpointError(f"{path}: 'codes' ({recorded_json or 'absent'}) does not "
                              f"match the codes its generator takes here ({names})")


def draw(model: BuiltRun, n: int, *, seed: int = 0, ema: bool = True,
         labels: Tensor | None = None, codes: dict[str, Tensor] | None = None) -> tuple[Tensor, str]:
    """``n`` samples in data space from a loaded model, and which generator made them."""
    rng = torch.Generator(device=model.device).manual_seed(seed)
    used = "ema" if ema and model.ema is not None else "raw"
    return draw_samples(model, n, rng=rng, ema=ema, labels=labels, codes=codes), used


def generate(host: PluginHost, source: str | Path, *, n: int, seed: int = 0, ema: bool = True,
             device: str = "cpu", labels: Tensor | None = None) -> tuple[Tensor, str]:
    """Load a run's generator and draw ``n`` samples (see :func:`draw`)."""
    model, _ = load_model(host, source, device)
    return draw(model, n, seed=seed, ema=ema, labels=labels)


def write_samples(x: Tensor, out: str | Path, labels: Tensor | None = None, nrow: int | None = None) -> None:
    """``.png`` grid (or scatter plot for 2-D points), ``.npy`` or ``.safetensors``.

    The safetensors file holds ``samples`` and, for conditional runs, their ``labels``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".png":
        save_samples(x, out, nrow=nrow)
    elif suffix == ".npy":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, x.numpy(), allow_pickle=False)
    elif suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {"samples": x.contiguous()}
        if labels is not None:
            tensors["labels"] = labels.contiguous()
        with atomic_path(out) as tmp:
            save_file(tensors, str(tmp))
    else:
        raise ConfigError(f"--out: {out} must end in .png, .npy or .safetensors")


TENSOR_SUFFIXES = (".npy", ".safetensors")
#: What one translated image may be written as (PIL's writers for them ship with Pillow).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _read_tensor(path: Path) -> Tensor:
    """Images in [-1, 1] from a ``.npy`` or ``.safetensors`` file; values outside it (pixels of 0..255, another
    scale) are one line naming the file, never translated as they are."""
    x = _read_tensor_file(path)
    if x.numel() and torch.isfinite(x).all():
        low, high = float(x.min()), float(x.max())
        if low < -1.0 - 1e-4 or high > 1.0 + 1e-4:
            raise ConfigError(f"--input: {path} holds values from {low:g} to {high:g}; expected images in [-1, 1] "
                              "(pixels p of 0..255 are p / 127.5 - 1)")
    return x


def _read_tensor_file(path: Path) -> Tensor:
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ConfigError(f"--input: {path} is not a plain numeric .npy array: {exc}") from None
        if array.dtype.kind not in "biuf":
            raise ConfigError(f"--input: {path} holds {array.dtype} values; expected numbers (images in [-1, 1])")
        return torch.from_numpy(array).float()
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ConfigError(f"--input: {path} is not a readable safetensors file: {exc}") from None
    if "samples" in tensors:
        return tensors["samples"].float()
    if len(tensors) == 1:
        return next(iter(tensors.values())).float()
    raise ConfigError(f"--input: {path} holds several tensors; name the images 'samples'")


def translate_images(model: BuiltRun, x: Tensor, direction: str, ema: bool = True) -> Tensor:
    """Translate ``[N, C, H, W]`` images in [-1, 1] with a run's generator(s)."""
    spec = model.variant.data
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(spec.shape):
        raise ConfigError(f"--input: expected images of shape [N, {', '.join(map(str, spec.shape))}], "
                          f"got {list(x.shape)}")
    if len(x) == 0:
        raise ConfigError(f"--input: holds no images (shape {list(x.shape)})")
    if not torch.isfinite(x).all():
        raise ConfigError("--input: the images hold NaN or infinite values")
    return translate_chunks(model, x, direction, ema=ema)


def translate_path(model: BuiltRun, source: str | Path, out: str | Path, direction: str, ema: bool = True) -> int:
    """Translate a folder of images, one image, or a ``.npy``/``.safetensors`` tensor file.

    Folders and images keep their file names; tensors are written as ``.npy`` or
    ``.safetensors`` (key ``samples``). Returns the number of images translated.
    """
    from gancore.data.image_folder import image_files, load_image
    from gancore.images import to_uint8

    source, out = Path(source), Path(out)
    if not source.exists():
        raise ConfigError(f"--input: {source} does not exist")
    if out.exists() and out.resolve() == source.resolve():
        what = "folder" if source.is_dir() else "file"
        raise ConfigError(f"--out: {out} is the --input {what}; the translations would replace the images they "
                          "are made from (choose another --out)")
    if source.suffix.lower() in TENSOR_SUFFIXES:
        if out.suffix.lower() not in TENSOR_SUFFIXES:
            raise ConfigError(f"--out: tensors in, tensors out: {out} must end in .npy or .safetensors")
        y = translate_images(model, _read_tensor(source), direction, ema)
        write_samples(y, out)
        return len(y)
    if not source.is_dir() and out.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"--out: images in, images out: {out} must end in {', '.join(IMAGE_SUFFIXES)}")
    files = image_files(source) if source.is_dir() else [source]
    if not files:
        raise ConfigError(f"--input: no images found in {source}")
    size, channels = model.variant.data.shape[-1], model.variant.data.shape[0]
    x = torch.stack([load_image(f, size, channels) for f in files])
    y = to_uint8(translate_images(model, x, direction, ema))
    from PIL import Image

    if source.is_dir():
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / f.name for f in files]
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        targets = [out]
    formats = Image.registered_extensions()
    for img, target in zip(y, targets, strict=True):
        with atomic_path(target) as tmp:
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp, format=formats[target.suffix.lower()])
    return len(files)
