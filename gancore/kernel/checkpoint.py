"""Checkpoints in safetensors: tensors for state, JSON strings in the metadata for the rest.

Nothing is ever unpickled. A file is written to a temporary name in the same folder, flushed
to disk, then renamed over the target, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from gancore.errors import CheckpointError
from gancore.files import atomic_path

FORMAT = "gancore.checkpoint"
FORMAT_VERSION = "1"
CHECKPOINT_RE = re.compile(r"^step_(\d{7,})\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}.safetensors"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        m = CHECKPOINT_RE.match(path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the latest checkpoint of a run directory."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        found = list_checkpoints(path / "checkpoints") or list_checkpoints(path)
        if found:
            return found[-1][1]
        raise CheckpointError(f"{path}: no checkpoints (expected {path}/checkpoints/step_*.safetensors)")
    raise CheckpointError(f"{path}: no such run directory or checkpoint file")


def write_atomic(tensors: dict[str, Tensor], metadata: dict[str, str], path: Path) -> None:
    """Write a safetensors file atomically (:func:`gancore.files.atomic_path`, fsynced). A failed write
    (disk full, permission) leaves any file already at ``path`` as it was and raises
    :class:`~gancore.errors.WriteError` naming the file and the reason."""
    with atomic_path(path, fsync=True) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def module_tensors(prefix: str, module: nn.Module) -> dict[str, Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone()
            for k, v in module.state_dict().items()}


def optimizer_state(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], str]:
    """Per-parameter state tensors, and the non-tensor state as JSON.

    Hyperparameters (param groups) are not stored: on resume they come from the config, so
    ``--set optim.critic.lr=...`` takes effect.
    """
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"{prefix}.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, json.dumps(scalars)


def state_template(optimizer: torch.optim.Optimizer) -> dict[str, tuple[bool, torch.dtype, bool]]:
    """What this optimizer keeps per parameter once it has stepped: state key -> (has the parameter's shape
    (else a scalar), dtype, never negative). Read off a probe of the same class and hyperparameters stepped
    twice with gradients of both signs, so it holds for any torch optimizer (Adam's ``exp_avg_sq`` and
    ``step`` are never negative, ``exp_avg`` may be; SGD without momentum keeps nothing)."""
    import inspect

    accepted = inspect.signature(type(optimizer)).parameters
    settings = {k: v for k, v in optimizer.param_groups[0].items()
                if k in accepted and k not in ("params", "fused", "foreach", "capturable", "differentiable")}
    probe = nn.Parameter(torch.zeros(2, 3))
    trial = type(optimizer)([probe], **settings)
    for sign in (1.0, -1.0):
        probe.grad = torch.tensor([[1.0, -2.0, 3.0], [-1.0, 2.0, -3.0]]) * sign
        trial.step()
    return {key: (value.shape == probe.shape, value.dtype, bool((value >= 0).all()))
            for key, value in trial.state.get(probe, {}).items() if isinstance(value, Tensor)}


def check_optimizer_state(optimizer: torch.optim.Optimizer, prefix: str, state: dict[int, dict[str, Any]],
                          *, required: bool) -> None:
    """A ValueError naming the tensor unless ``state`` is what ``optimizer`` keeps: for each parameter every
    key of :func:`state_template` (``required``: the player has been updated, so every parameter has its
    state), with its parameter's shape and dtype or a scalar, and never negative where the optimizer never
    makes it negative (finiteness: :func:`gancore.kernel.state.check_finite`, over every tensor).
    Anything less would resume with fresh moments, not exactly."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    template = state_template(optimizer)
    for idx in state:
        if not 0 <= idx < len(params):
            raise ValueError(f"{prefix}: state for parameter {idx}, but the optimizer has {len(params)}")
    for idx, param in enumerate(params):
        values = state.get(idx, {})
        if not values and not required:
            continue
        for key, (shaped, dtype, nonneg) in template.items():
            name = f"tensor '{prefix}.{idx}.{key}'"
            value = values.get(key)
            if not isinstance(value, Tensor):
                raise ValueError(f"{name} is missing (the optimizer's state of every parameter is needed to "
                                 "continue exactly)")
            want_shape, want_dtype = (param.shape, param.dtype) if shaped else (torch.Size([]), dtype)
            if value.shape != want_shape or value.dtype != want_dtype:
                raise ValueError(f"{name} is {list(value.shape)} {value.dtype}, expected {list(want_shape)} "
                                 f"{want_dtype}")
            if nonneg and bool((value < 0).any()):
                raise ValueError(f"{name} holds negative values (the optimizer keeps it non-negative)")


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, Tensor], scalars_json: str,
    *, required: bool = False,
) -> None:
    """Load ``optimizer``'s per-parameter state, checked by :func:`check_optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in json.loads(scalars_json).items():
        state.setdefault(int(idx), {}).update(values)
    check_optimizer_state(optimizer, prefix, state, required=required)
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    # Safetensors stores tensors contiguous; give each moment its parameter's layout again (a
    # channels-last weight's moments are channels-last), as fused kernels expect matching strides.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if isinstance(value, Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


class Checkpoint:
    """A checkpoint read into memory: ``tensors`` and decoded ``metadata``."""

    def __init__(self, path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
        self.path = path
        self.tensors = tensors
        self.metadata = metadata

    @property
    def step(self) -> int:
        return int(self.metadata["step"])

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.metadata["config"])

    def json(self, key: str) -> Any:
        return json.loads(self.metadata[key])

    def section(self, prefix: str) -> dict[str, Tensor]:
        """Tensors under ``prefix.``, with the prefix removed."""
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix + ".") for k in self.tensors)

    def load_module(self, prefix: str, module: nn.Module) -> None:
        state = self.section(prefix)
        expected = module.state_dict()
        for key, value in state.items():  # load_state_dict would cast a bool or int64 weight silently
            want = expected.get(key)
            if want is not None and value.dtype != want.dtype:
                raise CheckpointError(f"{self.path}: tensor '{prefix}.{key}' is {value.dtype}, the network "
                                      f"holds {want.dtype}")
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            detail = " ".join(line.strip() for line in first[:3])
            raise CheckpointError(
                f"{self.path}: the {prefix!r} weights do not fit the network the config builds "
                f"({detail[:300]})"
            ) from None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read and check a gancore checkpoint; a truncated or foreign file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            metadata = fh.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise CheckpointError(
                    f"{path}: not a gancore checkpoint (a safetensors file without gancore's "
                    "metadata)"
                )
            if metadata.get("format_version") != FORMAT_VERSION:
                raise CheckpointError(
                    f"{path}: checkpoint format version {metadata.get('format_version')!r} is "
                    f"not supported (this gancore reads version {FORMAT_VERSION})"
                )
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except OSError as exc:  # permission, a folder in its place, ...: the plain reason, not "corrupt"
        from gancore.errors import os_error_reason

        raise CheckpointError(f"{path}: cannot read the checkpoint: {os_error_reason(exc)}") from None
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from None
    check_metadata(path, metadata)
    return Checkpoint(path, tensors, metadata)


_COUNT = re.compile(r"\d{1,15}")


def check_metadata(path: Path, metadata: dict[str, str]) -> None:
    """The metadata schema: counters are non-negative integers, the JSON entries parse to what they
    should be. A CheckpointError names the file, the key, what was expected and what was found."""

    def bad(key: str, expected: str) -> CheckpointError:
        found = metadata[key]
        return CheckpointError(f"{path}: metadata {key!r} must be {expected}, found {found[:60]!r}")

    for key in ("step", "config"):
        if key not in metadata:
            raise CheckpointError(f"{path}: checkpoint metadata lacks {key!r}")
    for key in ("step", "critic_steps"):
        if key in metadata and not _COUNT.fullmatch(metadata[key]):
            raise bad(key, "a non-negative integer")
    kinds = {"config": dict, "updates": dict, "sampler": dict}
    kinds.update({k: dict for k in metadata if k.startswith(("optim.", "scaler."))})
    for key, kind in kinds.items():
        if key not in metadata:
            continue
        try:
            value = json.loads(metadata[key])
        except (json.JSONDecodeError, RecursionError):
            raise bad(key, "JSON") from None
        if not isinstance(value, kind):
            raise bad(key, "a JSON object")
        if key == "updates" and not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                        for v in value.values()):
            raise bad(key, "a JSON object of non-negative integer counts")
    from gancore.codes import codes_from_json
    from gancore.interfaces import DataSpec

    for key, parse in (("data_spec", DataSpec.from_json), ("codes", codes_from_json)):
        if key in metadata:
            try:
                parse(metadata[key])
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
