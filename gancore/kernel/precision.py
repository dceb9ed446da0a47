"""Device and precision policy: autocast without branches in the step, a scaler per player."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gancore.errors import ConfigError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:[0-9]{1,4})?)")


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """``auto`` is the first CUDA device when one is present, else the CPU. Anything but auto, cpu,
    cuda, cuda:N or mps (``meta``, a typo) is a ConfigError naming ``key``."""
    if not isinstance(name, str) or not _DEVICE.fullmatch(name):
        raise ConfigError(f"{key}: expected auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: cuda was asked for but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{key}: {name} does not exist ({torch.cuda.device_count()} CUDA devices)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: mps was asked for but this machine has no MPS device")
    return device


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``'s ``flags``; empty where there is none)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as fh:
                cpuinfo = fh.read()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


#: CPU flags under which bf16 autocast runs faster than fp32 (oneDNN's bf16 convolutions and matmuls
#: use them), and what they are: AMX's tile units (an Intel Xeon: 2.2x fp32, issue 30) and AVX-512-BF16's
#: dot products (an AMD EPYC without AMX: 1.07-1.41x fp32 on every variant's default run,
#: benchmarks/README.md "Precision"). Without either, bf16 is emulated and far slower than fp32.
FAST_BF16_FLAGS = {"amx_bf16": "AMX bf16 units", "avx512_bf16": "AVX-512-BF16 units"}


def choose_precision(name: str, device_type: str, *, cuda_bf16: bool = False,
                     flags: set[str] | None = None) -> tuple[str, str]:
    """The precision ``train.precision = name`` means on this device, and why (for the run's first line:
    ``train.precision`` when it was not ``auto``)."""
    if name != "auto":
        return name, "train.precision"
    if device_type == "cuda":
        return ("bf16", "auto: the GPU supports bf16") if cuda_bf16 else ("fp32", "auto: the GPU has no bf16")
    if device_type == "cpu":
        flags = cpu_flags() if flags is None else flags
        fast = [what for flag, what in FAST_BF16_FLAGS.items() if flag in flags]
        if fast:
            return "bf16", f"auto: the CPU has {fast[0]}"
        return "fp32", "auto: the CPU has no bf16 units (AMX or AVX-512-BF16)"
    return "fp32", f"auto: fp32 on {device_type}"


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA devices that support it and on CPUs with bf16 units, else fp32."""
    return resolve_precision_why(name, device)[0]


def resolve_precision_why(name: str, device: torch.device, *, bf16_ok: bool = True,
                          who: str = "the variant") -> tuple[str, str]:
    """:func:`choose_precision` on ``device``; with ``bf16_ok`` False (``Capabilities.auto_bf16``) an ``auto``
    that would be bf16 stays fp32, and the reason names ``who``."""
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    precision, why = choose_precision(name, device.type, cuda_bf16=cuda_bf16)
    if name == "auto" and precision == "bf16" and not bf16_ok:
        return "fp32", f"auto: {who} keeps fp32 (its results do not hold at bf16)"
    return precision, why


@dataclass
class Precision:
    """The resolved policy: an autocast context factory and one GradScaler per player."""

    name: str
    device: torch.device

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=DTYPES[self.name])

    def scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only under fp16 (a no-op otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.name == "fp16")


def scaled_grad(scaler: torch.amp.GradScaler) -> Callable[[Tensor, Tensor], Tensor]:
    """Gradient of ``outputs.sum()`` w.r.t. ``inputs``, with a graph, safe under fp16.

    PyTorch's AMP gradient-penalty recipe: differentiate the *scaled* outputs so small fp16
    gradients do not underflow, then unscale in float32. The scale is read as a device tensor
    (no host synchronisation).
    """

    def grad(outputs: Tensor, inputs: Tensor) -> Tensor:
        total = outputs.float().sum()
        if scaler.is_enabled():
            scaled = scaler.scale(total)  # also creates the scale on the scaler's first use
            # The scale as a device tensor: get_scale() would synchronise with the host.
            inv_scale = scaler._get_scale_async().double().reciprocal().float()
            (g,) = torch.autograd.grad(scaled, inputs, create_graph=True)
            return g.float() * inv_scale
        (g,) = torch.autograd.grad(total, inputs, create_graph=True)
        return g

    return grad
