"""Render a resolved config as commented TOML: every setting, its value and its description."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from gancore.config import EvalSettings, LogSettings, OptimizerSettings, RunConfig, TrainSettings


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value)


def _lines(model: BaseModel, cls: type[BaseModel], skip: tuple[str, ...] = (), section: str = "",
           marks: dict[str, str] | None = None) -> list[str]:
    """One ``key = value  # description`` line per setting; a key in ``marks`` (dotted, under
    ``section``) gets its note in front of the description."""
    out = []
    for name, field in cls.model_fields.items():
        if name in skip:
            continue
        value = getattr(model, name)
        desc = field.description or ""
        if isinstance(value, BaseModel):
            continue
        note = (marks or {}).get(f"{section}.{name}" if section else name)
        if note:
            desc = f"[{note}] {desc}"
        text = f"{name} = {_value(value)}" if value is not None else f"# {name} = (unset)"
        out.append(f"{text:<36} # {desc}" if desc else text)
    return out


def _doc(cls: type) -> str:
    lines = (cls.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


def describe(cfg: RunConfig) -> str:
    """Commented TOML of the whole resolved config (valid input for ``--config``)."""
    parts: list[str] = []
    note = f"default for {cfg.data_kind} data"
    marks = dict.fromkeys(cfg.from_data, note)

    def named(section: str, cls: type, settings: BaseModel) -> None:
        """``[section]``, or ``[[section]]`` for list items (section given with its brackets)."""
        header = section if section.startswith("[") else f"[{section}]"
        header, _, extra = header.partition("  # ")
        if extra:
            parts.append(f"# {extra}")
        parts.append(f"{header}  # {cls.name}: {_doc(cls)}")
        parts.append(f"name = {_value(cls.name)}")
        parts.extend(_lines(settings, type(settings)))
        parts.append("")

    if marks:
        parts += [f"# [{note}]: set by the variant's defaults for the kind of data ({cfg.data_kind}) "
                  f"data.name selects", ""]
    named("variant", cfg.variant_cls, cfg.variant)
    named("data", cfg.data_cls, cfg.data)
    named("loss", cfg.loss_cls, cfg.loss)
    for cls, settings in cfg.regularizers:
        named("[[regularizers]]" + (f"  # [{note}]" if "regularizers" in marks else ""), cls, settings)
    if not cfg.regularizers:
        parts += ["# regularizers = []  (a list of {name = ..., weight = ...}; see "
                  "`gancore list regularizers`)", ""]
    if cfg.augment_cls is not None and cfg.augment is not None:
        named("augment", cfg.augment_cls, cfg.augment)
    else:
        parts += ["# augment: none  (augment.name = diffaugment or ada augments what the critic sees; see "
                  "`gancore list augments`)", ""]
    parts.append("[train]")
    parts.extend(_lines(cfg.train, TrainSettings, section="train", marks=marks))
    parts.append("")
    for player in cfg.optim.players():
        parts.append(f"[optim.{player}]")
        parts.extend(_lines(cfg.optim.for_player(player), OptimizerSettings, section=f"optim.{player}", marks=marks))
        parts.append("")
    parts.append("[log]")
    parts.extend(_lines(cfg.log, LogSettings, section="log", marks=marks))
    parts.append("")
    parts.append("[eval]")
    parts.extend(_lines(cfg.eval, EvalSettings, skip=("metrics",)))
    parts.append("")
    for cls, settings in cfg.eval_metrics:
        named("[[eval.metrics]]", cls, settings)
    if not cfg.eval_metrics:
        parts.append("# eval.metrics = []  (empty: the task's default metrics; see `gancore list metrics`)")
    for name, settings in cfg.plugins.items():
        parts += ["", f"[{name}]  # plugin {name}'s settings" + (f": {_doc(type(settings))}" if _doc(type(settings))
                                                               else "")]
        parts.extend(_lines(settings, type(settings), section=name))
    return "\n".join(parts).rstrip() + "\n"
