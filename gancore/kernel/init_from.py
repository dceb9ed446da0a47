"""``train.init_from``: a new run's networks start from another run's weights (fine-tuning).

Only the weights: the optimizers, counters and random streams start fresh, at step 0. The source
is a run directory (its latest checkpoint), a checkpoint file, or an exported folder
(``gancore export --format hf``: one player's weights; the other players start fresh). Under
``train.init_strict`` every tensor of every network the source holds must fit; a checkpoint must
hold every network of the new run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from torch import Tensor

from gancore.errors import CheckpointError, ConfigError
from gancore.kernel import checkpoint as ck
from gancore.kernel.build import BuiltRun, ema_prefix
from gancore.kernel.state import network_sections


def source_tensors(path: Path) -> tuple[dict[str, dict[str, Tensor]], bool]:
    """Network prefix (``generator``, ``critic``, ``ema``, ...) -> its tensors, from ``path``; and whether the
    source holds a whole run (a checkpoint) rather than one exported player."""
    if path.is_dir() and (path / "model.safetensors").is_file() and (path / "config.json").is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            player = str(json.loads((path / "config.json").read_text())["player"])
            tensors = load_file(str(path / "model.safetensors"))
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            raise CheckpointError(f"train.init_from: {path} is not a readable gancore export ({exc})") from None
        return {player: tensors}, False
    ckpt = ck.read_checkpoint(ck.find_checkpoint(path))
    prefixes = {key.split(".", 1)[0] for key in ckpt.tensors if "." in key}
    return {p: ckpt.section(p) for p in sorted(prefixes)}, True


def init_from(built: BuiltRun, path: str | Path, *, strict: bool, echo: Callable[[str], None]) -> None:
    """Load ``path``'s weights into ``built``'s networks (and the EMA); see the module's docstring."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"train.init_from: {path} does not exist")
    found, whole_run = source_tensors(path)
    skipped: list[str] = []
    loaded: list[str] = []
    averaged = {ema_prefix(player): player for player in built.emas}
    for prefix, module in network_sections(built).items():
        if prefix.startswith("state_"):  # the variant's state (history pools) starts fresh: weights only
            continue
        state = found.get(prefix)
        if state is None and prefix in averaged:
            state = found.get(averaged[prefix])  # an EMA starts from the player it averages
        if state is None:
            if strict and whole_run:  # an export holds one player: the others start fresh
                raise ConfigError(f"train.init_from: {path} holds no weights for {prefix!r} (it has "
                                  f"{', '.join(found) or 'none'}); train.init_strict=false loads what matches")
            skipped.append(f"{prefix} (absent)")
            continue
        expected = module.state_dict()
        take = {}
        for key, want in expected.items():
            got = state.get(key)
            if got is None:
                problem = "missing"
            elif tuple(got.shape) != tuple(want.shape):
                problem = f"expected shape {list(want.shape)}, found {list(got.shape)}"
            elif got.dtype != want.dtype:
                problem = f"expected {want.dtype}, found {got.dtype}"
            else:
                take[key] = got
                continue
            if strict:
                raise ConfigError(f"train.init_from: {path}: tensor '{prefix}.{key}' {problem}; "
                                  "train.init_strict=false loads what matches")
            skipped.append(f"{prefix}.{key} ({problem})")
        module.load_state_dict({**expected, **take}, strict=True)
        loaded.append(f"{prefix} ({len(take)}/{len(expected)} tensors)")
    echo(f"init_from {path}: loaded {', '.join(loaded) or 'nothing'}"
         + (f"; not loaded: {', '.join(skipped[:10])}" + (f" and {len(skipped) - 10} more" if len(skipped) > 10
                                                            else "") if skipped else ""))
