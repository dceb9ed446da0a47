"""The run configuration: core sections, plugin sections, files and ``--set`` overrides.

Resolution order, lowest first: the core's defaults, the variant's :meth:`Variant.defaults`,
the config file, then each ``--set dotted.key=value``. The result is validated section by
section (each plugin's section by the plugin's own ``Config``) and every mistake becomes one
:class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gancore.errors import ConfigError, PluginError
from gancore.interfaces import Settings
from gancore.plugins import PluginHost


class TrainSettings(Settings):
    steps: int = Field(2000, ge=1, description="Generator steps (iterations) to train for.")
    batch_size: int = Field(64, ge=1, le=65536, description="Samples per batch.")
    n_critic: int = Field(1, ge=1, le=100, description="Critic steps per generator step.")
    seed: int = Field(0, ge=0, description="Seed of every random number in the run.")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast precision. auto: bf16 on GPUs that support it, else fp32 (the "
        "CPU default: bf16 autocast is slow on CPUs without bf16 units). fp16 uses one "
        "GradScaler per player.",
    )
    ema: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Decay of an exponential moving average of the generator's weights "
        "(e.g. 0.999); null disables it.",
    )
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="Channels-last memory format for image data and conv weights. auto: on for "
        "image data, except on the CPU for networks with instance norm or reflection padding, whose CPU "
        "kernels lose in channels-last (measured: +16-17% for DCGAN and WGAN-GP, -7% for CycleGAN)."
    )
    fused_optimizer: Literal["auto", "on", "off"] = Field(
        "auto", description="Fused Adam/AdamW kernels (one kernel per step instead of one per tensor). auto: "
        "on (measured +0-10% on the CPU)."
    )
    compile: bool = Field(
        False, description="torch.compile the generator, and the critic when no regularizer needs its double "
        "backward (compile does not support it: that pass stays eager). Measured to gain nothing for these "
        "small networks on a CPU; try it on a GPU."
    )

    @field_validator("channels_last", "fused_optimizer", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """true/false (and runs saved before "auto" existed) mean on/off."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (
            value.startswith("cuda:") and value[5:].isdigit()
        ):
            return value
        raise ValueError("expected auto, cpu, cuda or cuda:N")


class OptimizerSettings(Settings):
    name: Literal["adam", "adamw", "rmsprop", "sgd"] = Field("adam", description="Optimizer.")
    lr: float = Field(2e-4, gt=0.0, description="Learning rate.")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam/AdamW betas.")
    eps: float = Field(1e-8, gt=0.0, description="Numerical stability term.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="RMSprop/SGD momentum.")
    schedule: Literal["constant", "linear"] = Field(
        "constant",
        description="Learning-rate schedule: constant, or linear decay to 0 from decay_start "
        "(a fraction of train.steps) to the last step.",
    )
    decay_start: float = Field(0.5, ge=0.0, lt=1.0, description="Where the linear decay starts.")

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate for generator step ``step`` (0-based) of ``total``."""
        if self.schedule == "constant":
            return self.lr
        start = self.decay_start * total
        if step < start:
            return self.lr
        return self.lr * max(0.0, (total - step) / max(total - start, 1.0))

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError("each beta must be in [0, 1)")
        return value


class OptimSettings(Settings):
    """One optimizer per player: ``generator``, ``critic`` and, for a variant with further
    players (``Networks.others``), ``optim.<player>`` tables of the same settings."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    generator: OptimizerSettings = Field(default_factory=OptimizerSettings)
    critic: OptimizerSettings = Field(default_factory=OptimizerSettings)

    @model_validator(mode="after")
    def _other_players(self) -> OptimSettings:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, OptimizerSettings):
                if not isinstance(value, dict):
                    raise ValueError(f"{name}: expected a table of optimizer settings")
                self.model_extra[name] = OptimizerSettings.model_validate(value)
        return self

    def for_player(self, player: str) -> OptimizerSettings:
        """The settings of ``player``'s optimizer; a player without any is a config error."""
        if player in ("generator", "critic"):
            return getattr(self, player)
        extra = self.model_extra or {}
        if player not in extra:
            raise ConfigError(f"optim.{player}: the variant trains a network {player!r}, which needs "
                              f"optimizer settings (set optim.{player}.name, lr, ...)")
        return extra[player]

    def players(self) -> list[str]:
        return ["generator", "critic", *(self.model_extra or {})]


class LogSettings(Settings):
    every: int = Field(50, ge=1, description="Steps between metrics.jsonl records.")
    sample_every: int = Field(500, ge=0, description="Steps between sample grids; 0: only at end.")
    checkpoint_every: int = Field(
        1000, ge=0, description="Steps between checkpoints; 0: only at the end."
    )
    keep_checkpoints: int = Field(3, ge=1, description="Most recent checkpoints kept.")
    samples: int = Field(64, ge=1, le=1024, description="Images in each sample grid.")
    scatter_points: int = Field(
        2000, ge=1, le=100_000, description="Points in each scatter plot (vector data)."
    )
    progress: bool = Field(True, description="Show a progress bar.")
    tensorboard: bool = Field(
        False, description="Also write losses, metrics and sample grids for TensorBoard to RUN/tensorboard/ "
        "(needs the tensorboard package)."
    )


class NamedSection(BaseModel):
    """A section selecting a plugin class by ``name``; its other keys are that class's settings."""

    model_config = ConfigDict(extra="allow")
    name: str


class EvalSettings(Settings):
    every: int = Field(
        0, ge=0, description="Steps between evaluations during training (and at the end); 0: none. "
        "Results go to metrics.jsonl as eval/<metric>/<value> and to eval/*.json."
    )
    n: int = Field(1000, ge=2, le=100_000, description="Samples drawn for each evaluation.")
    metrics: list[NamedSection] = Field(
        default_factory=list, description="Metrics, e.g. [{name = \"fid\"}]; empty: the task's defaults "
        "(fid; label-accuracy for conditional runs; modes for 2-D mixtures; preservation for translation)."
    )


CORE_DEFAULTS: dict[str, Any] = {"data": {"name": "digits"}, "loss": {"name": "nonsaturating"}}


class RawConfig(Settings):
    variant: NamedSection
    data: NamedSection
    loss: NamedSection
    regularizers: list[NamedSection] = Field(default_factory=list)
    train: TrainSettings = Field(default_factory=TrainSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)


@dataclass
class RunConfig:
    """A fully resolved and validated run configuration."""

    variant_cls: type
    variant: Settings
    data_cls: type
    data: Settings
    loss_cls: type
    loss: Settings
    regularizers: list[tuple[type, Settings]]
    train: TrainSettings
    optim: OptimSettings
    log: LogSettings
    eval: EvalSettings = field(default_factory=EvalSettings)
    eval_metrics: list[tuple[type, Settings]] = field(default_factory=list)
    from_data: dict[str, Any] = field(default_factory=dict)
    """Dotted keys whose values came from the variant's :meth:`~gancore.Variant.data_defaults`
    (and were not overridden), with the data kind that chose them: ``gancore config`` marks them."""
    data_kind: str = "image"

    def to_dict(self) -> dict[str, Any]:
        """The config as written to ``config.json`` (re-runnable with ``--config``)."""

        def named(cls: type, settings: Settings) -> dict[str, Any]:
            return {"name": cls.name, **settings.model_dump(mode="json")}

        return {
            "variant": named(self.variant_cls, self.variant),
            "data": named(self.data_cls, self.data),
            "loss": named(self.loss_cls, self.loss),
            "regularizers": [named(c, s) for c, s in self.regularizers],
            "train": self.train.model_dump(mode="json"),
            "optim": self.optim.model_dump(mode="json"),
            "log": self.log.model_dump(mode="json"),
            "eval": {"every": self.eval.every, "n": self.eval.n,
                     "metrics": [named(c, s) for c, s in self.eval_metrics]},
        }


# -- reading files and overrides ---------------------------------------------------------------


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: no such file {path}")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ConfigError(f"--config: {path} must hold a JSON object")
            return data
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    raise ConfigError(f"--config: {path} must end in .toml or .json")


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON where it parses, else the plain string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_set(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` override in place (list items by index: ``a.0.b``)."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    parts = key.split(".")
    value = parse_value(text)
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, ".".join(parts[: i + 1]))
            continue
        child = node.get(part)
        if isinstance(child, str) and part in ("variant", "data", "loss"):
            child = node[part] = {"name": child}
        elif not isinstance(child, dict | list):
            if parts[i + 1].isdigit():
                raise MissingListItem(
                    f"--set {key}: {'.'.join(parts[: i + 1])} has no item {parts[i + 1]}; "
                    f"set the whole list, e.g. --set {'.'.join(parts[: i + 1])}='[...]'"
                )
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(node, list):
        index = int(_list_index(node, last, key))
        node[index] = value
    else:
        node[last] = value


class MissingListItem(ConfigError):
    """A ``--set`` path indexes a list item that does not exist."""


def _list_index(node: list[Any], part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise MissingListItem(f"--set {key}: expected a list index below {len(node)}")
    return int(part)


def _list_item(node: list[Any], part: str, key: str) -> Any:
    return node[_list_index(node, part, key)]


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursively for dicts; a named section whose name changes restarts."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "name" in value and old.get("name") not in (None, value["name"]):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -- validation --------------------------------------------------------------------------------


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    for part in loc:
        if not isinstance(part, str):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return sorted(model.model_fields)


def format_validation_error(exc: ValidationError, prefix: str, model: type[BaseModel]) -> str:
    """One line: ``key: problem`` for each error, joined by ``; ``."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join([prefix, *map(str, loc)] if prefix else map(str, loc))
        if err["type"] == "extra_forbidden":
            allowed = _fields_of(model, loc[:-1])
            msg = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"]
            if err["type"] not in ("value_error", "assertion_error") and "input" in err:
                msg += f", got {json.dumps(err['input'], default=str)}"
            msg = msg.replace("Value error, ", "")
        lines.append(f"{key}: {msg}" if key else msg)
    return "; ".join(lines)


def validate(model: type[Settings], data: Any, prefix: str) -> Settings:
    """Validate ``data`` with ``model``; errors become one :class:`ConfigError` line."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix}: expected a table of settings, got {json.dumps(data)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix, model)) from None


def _plugin_section(registry: Any, section: dict[str, Any], key: str) -> tuple[type, Settings]:
    section = dict(section)
    name = section.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{key}.name: required, one of: {', '.join(registry.names())}")
    try:
        cls = registry.get(name)
    except PluginError as exc:
        raise ConfigError(f"{key}.name: {exc}") from None
    return cls, validate(cls.Config, section, key)


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for key in ("variant", "data", "loss"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
    return raw


def resolve(host: PluginHost, raw: dict[str, Any], sets: tuple[str, ...] | list[str] = ()) -> RunConfig:
    """Validate a raw config (file merged with a base) into a :class:`RunConfig`.

    ``sets`` (``dotted.key=value``) belong to the user's layer, so a ``--set data.name=...``
    drops the variant's defaults for the old data source like a config file would; a set that
    indexes a list only the variant's defaults provide (``regularizers.0.weight=5``) applies
    after they are merged.
    """
    raw = copy.deepcopy(_normalise(raw))
    into_defaults: list[str] = []
    for assignment in sets:
        try:
            apply_set(raw, assignment)
        except MissingListItem:
            into_defaults.append(assignment)
    raw = _normalise(raw)
    variant_section = raw.get("variant")
    if not isinstance(variant_section, dict):
        raise ConfigError(
            f"variant: required, one of: {', '.join(host.variants.names()) or 'none installed'}"
        )
    variant_cls, variant_settings = _plugin_section(host.variants, variant_section, "variant")
    defaults = deep_merge(CORE_DEFAULTS, _normalise(variant_cls.defaults(variant_settings)))
    data_kind = _data_kind(host, deep_merge(defaults, raw).get("data"))
    by_data = _normalise(variant_cls.data_defaults(variant_settings, data_kind))
    by_data.pop("data", None)  # data defaults tune training for the data; they do not choose it
    merged = deep_merge(deep_merge(defaults, by_data), raw)
    for assignment in into_defaults:
        apply_set(merged, assignment)
    from_data = {key: value for key, value in _flatten(by_data).items() if _flatten(merged).get(key) == value
                 and key not in _flatten(raw)}
    parsed = validate(RawConfig, merged, "")
    assert isinstance(parsed, RawConfig)
    data_cls, data_settings = _plugin_section(host.datasets, merged["data"], "data")
    loss_cls, loss_settings = _plugin_section(host.losses, merged["loss"], "loss")
    regularizers = [
        _plugin_section(host.regularizers, section, f"regularizers.{i}")
        for i, section in enumerate(merged.get("regularizers", []))
    ]
    if loss_cls.generator_uses_real and not variant_cls.generator_loss_gets_real:
        raise ConfigError(f"loss.name: the {loss_cls.name} loss needs the critic's outputs on a real batch in "
                          f"the generator step, which variant {variant_cls.name!r} does not give; choose another loss")
    eval_metrics = [
        _plugin_section(host.metrics, section, f"eval.metrics.{i}")
        for i, section in enumerate(merged.get("eval", {}).get("metrics", []))
    ]
    return RunConfig(
        variant_cls=variant_cls,
        variant=variant_settings,
        data_cls=data_cls,
        data=data_settings,
        loss_cls=loss_cls,
        loss=loss_settings,
        regularizers=regularizers,
        train=parsed.train,
        optim=parsed.optim,
        log=parsed.log,
        eval=parsed.eval,
        eval_metrics=eval_metrics,
        from_data=from_data,
        data_kind=data_kind,
    )


def _data_kind(host: PluginHost, section: Any) -> str:
    """The kind of data (``image``/``vector``) the data section selects, without loading it;
    ``image`` while the section does not name an installed source (validation reports that)."""
    name = section.get("name") if isinstance(section, dict) else None
    if isinstance(name, str) and name in host.datasets:
        return str(getattr(host.datasets.get(name), "data_kind", "image"))
    return "image"


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested dict; lists are leaves."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def preset_sets(host: PluginHost, variant: str, preset: str | None) -> list[str]:
    """The ``--set`` assignments of ``variant``'s preset ``preset`` (none for None)."""
    if preset is None:
        return []
    try:
        presets = host.variants.get(variant).presets
    except PluginError as exc:
        raise ConfigError(f"variant: {exc}") from None
    if preset not in presets:
        known = f"its presets: {', '.join(presets)}" if presets else "it has none"
        raise ConfigError(f"--preset: {variant} has no preset {preset!r} ({known})")
    return [f"{key}={json.dumps(value)}" for key, value in presets[preset].settings.items()]


def build_raw(
    variant: str | None,
    config_file: str | Path | None = None,
    base: dict[str, Any] | None = None,
    preset: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Merge ``base`` (a resumed run's config), a preset's assignments (:func:`preset_sets`) and
    a config file, in that order; pass ``--set`` to :func:`resolve`."""
    raw: dict[str, Any] = _normalise(base or {})
    for assignment in preset:
        apply_set(raw, assignment)
    if config_file is not None:
        raw = deep_merge(raw, _normalise(load_file(config_file)))
    if variant is not None:
        current = raw.get("variant", {})
        if current.get("name") not in (None, variant):
            where = "the run directory holds" if base is not None else "the config file is for"
            raise ConfigError(f"variant: {where} {current['name']!r}, not {variant!r}")
        raw["variant"] = {**current, "name": variant}
    return raw
