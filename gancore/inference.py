"""Loading a trained generator from a checkpoint and writing its samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gancore.config import resolve
from gancore.errors import CheckpointError, ConfigError
from gancore.interfaces import DataSpec
from gancore.kernel.build import Model, build_model
from gancore.kernel.checkpoint import Checkpoint, find_checkpoint, read_checkpoint
from gancore.kernel.precision import resolve_device
from gancore.labels import balanced_labels, check_labels, class_rows
from gancore.plugins import PluginHost
from gancore.visualize import save_samples


def load_model(host: PluginHost, source: str | Path, device: str = "cpu") -> tuple[Model, Checkpoint]:
    """Rebuild a run's networks from a checkpoint (its config and data spec are inside it)."""
    ckpt = read_checkpoint(find_checkpoint(source))
    try:
        cfg = resolve(host, ckpt.config)
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt.path}: its config does not resolve here: {exc}") from None
    spec_json = ckpt.json("data_spec")
    spec = DataSpec(kind=spec_json["kind"], shape=tuple(spec_json["shape"]),
                    num_classes=int(spec_json["num_classes"]))
    model = build_model(cfg, spec, resolve_device(device))
    ckpt.load_module("generator", model.nets.generator)
    ckpt.load_module("critic", model.nets.critic)
    if model.ema is not None and ckpt.has("ema"):
        ckpt.load_module("ema", model.ema)
    return model, ckpt


def sample_labels(model: Model, n: int, label: int | None = None, by_class: bool = False) -> Tensor | None:
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


@torch.no_grad()
def draw(model: Model, n: int, *, seed: int = 0, ema: bool = True,
         labels: Tensor | None = None) -> tuple[Tensor, str]:
    """``n`` samples in data space from a loaded model, and which generator made them."""
    gen: nn.Module = model.nets.generator
    used = "raw"
    if ema and model.ema is not None:
        gen, used = model.ema, "ema"
    gen.eval()
    if labels is None and model.variant.conditional:
        labels = balanced_labels(n, model.variant.data.num_classes)
    rng = torch.Generator(device=model.device).manual_seed(seed)
    out = [model.variant.sample(gen, min(512, n - i), rng=rng, device=model.device,
                                labels=None if labels is None else labels[i:i + 512])
           for i in range(0, n, 512)]
    return torch.cat(out).float().cpu(), used


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
        np.save(out, x.numpy(), allow_pickle=False)
    elif suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {"samples": x.contiguous()}
        if labels is not None:
            tensors["labels"] = labels.contiguous()
        save_file(tensors, str(out))
    else:
        raise ConfigError(f"--out: {out} must end in .png, .npy or .safetensors")
