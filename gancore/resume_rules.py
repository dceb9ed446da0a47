"""What a resumed run may change: the settings that leave the training it continues exact (steps, logging,
evaluation, learning rates and their schedules, where the data is read from, plugins' sections); anything
else — the seed, the networks, the loss, the optimizer's kind, the batch — is a one-line error listing what
differs, so that ``config.json`` always describes what the run really does."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from gancore.dotted import flatten
from gancore.errors import ConfigError

#: Dotted keys (``fnmatch`` patterns) a ``--resume`` may change.
CHANGEABLE_ON_RESUME = (
    "train.steps", "train.device", "train.threads", "train.channels_last", "train.allocator", "train.fused_optimizer",
    "train.compile",
    "log.*", "eval.*", "eval", "optim.*.lr", "optim.*.schedule", "optim.*.decay_start", "optim.*.warmup_steps",
    "data.path", "data.stream", "data.workers",
)


def changeable(key: str, core_sections: frozenset[str]) -> bool:
    """Whether ``key`` may change on resume: a listed key, or a plugin's own section (``wandb.*``)."""
    if key.split(".", 1)[0] not in core_sections:
        return True
    return any(fnmatch.fnmatchcase(key, pattern) or key.startswith(pattern + ".") for pattern in CHANGEABLE_ON_RESUME)


def check_resume(before: dict[str, Any], after: dict[str, Any], core_sections: frozenset[str]) -> None:
    """A ConfigError listing every setting that differs between the run's ``config.json`` (``before``,
    resolved) and the resumed config (``after``) and may not change on resume."""
    old, new = flatten(before, list_items=True), flatten(after, list_items=True)
    differ = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and not changeable(k, core_sections)]
    if not differ:
        return
    shown = ", ".join(f"{k} {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}" for k in differ[:6])
    more = f" (+{len(differ) - 6} more)" if len(differ) > 6 else ""
    raise ConfigError(f"--resume: {shown}{more}: cannot change on resume (the checkpoint was trained with the old "
                      "values); start a new run for them (train.init_from=RUN_DIR starts from its weights). A resume "
                      "changes train.steps, log.*, eval.*, learning rates and schedules, data.path")
