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


@torch.no_grad()
def generate(host: PluginHost, source: str | Path, *, n: int, seed: int = 0, ema: bool = True,
             device: str = "cpu", labels: Tensor | None = None) -> tuple[Tensor, str]:
    """``n`` samples in data space, and which generator made them (``ema`` or ``raw``)."""
    model, _ = load_model(host, source, device)
    gen: nn.Module = model.nets.generator
    used = "raw"
    if ema and model.ema is not None:
        gen, used = model.ema, "ema"
    gen.eval()
    rng = torch.Generator(device=model.device).manual_seed(seed)
    out = [model.variant.sample(gen, min(512, n - i), rng=rng, device=model.device,
                                labels=None if labels is None else labels[i:i + 512])
           for i in range(0, n, 512)]
    return torch.cat(out).float().cpu(), used


def write_samples(x: Tensor, out: str | Path) -> None:
    """``.png`` grid (or scatter plot for 2-D points), ``.npy`` or ``.safetensors`` (``samples``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".png":
        save_samples(x, out)
    elif suffix == ".npy":
        np.save(out, x.numpy(), allow_pickle=False)
    elif suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({"samples": x.contiguous()}, str(out))
    else:
        raise ConfigError(f"--out: {out} must end in .png, .npy or .safetensors")
