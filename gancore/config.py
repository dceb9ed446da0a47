"""The run configuration: core sections, plugin sections, files and ``--set`` overrides.

Resolution order, lowest first: the core's defaults, the variant's :meth:`Variant.defaults`,
the config file, then each ``--set dotted.key=value``. The result is validated section by
section (each plugin's section by the plugin's own ``Config``) and every mistake becomes one
:class:`ConfigError` line naming the key.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from gancore.config_files import load_file
from gancore.dotted import MissingListItem, apply_set, deep_merge, flatten, nest, parse_value
from gancore.errors import ConfigError, PluginError
from gancore.interfaces import DataSpec, Settings
from gancore.limits import check_depth
from gancore.plugins import PluginHost
from gancore.sections import (
    EvalSettings,
    LogSettings,
    NamedSection,
    OptimizerSettings,
    OptimSettings,
    TrainSettings,
)

__all__ = [
    "EvalSettings", "LogSettings", "NamedSection", "OptimSettings", "OptimizerSettings", "RawConfig", "RunConfig",
    "TrainSettings", "build_raw", "deep_merge", "load_file", "parse_value", "preset_settings", "resolve",
]


CORE_DEFAULTS: dict[str, Any] = {"data": {"name": "digits"}, "loss": {"name": "nonsaturating"}}


class RawConfig(Settings):
    variant: NamedSection
    data: NamedSection
    loss: NamedSection
    regularizers: list[NamedSection] = Field(default_factory=list)
    augment: NamedSection | None = None
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
    data_flip: bool = False
    """``data.flip`` of a source that does not declare it (the core's random horizontal flips)."""
    plugins: dict[str, Settings] = field(default_factory=dict)
    """Plugin name -> its own settings (``gancore_plugin_settings``), each with ``enabled``."""
    augment_cls: type | None = None
    """The augmentation of the critic's inputs (``augment.name``); None: none."""
    augment: Settings | None = None

    def plugin_settings(self, plugin: str) -> Settings:
        """The settings of ``plugin`` (a plugin that declares them with ``gancore_plugin_settings``)."""
        try:
            return self.plugins[plugin]
        except KeyError:
            raise PluginError(f"plugin {plugin!r} declares no settings (gancore_plugin_settings)") from None

    @property
    def data_where(self) -> str:
        """How an error about the loaded data names it: ``data.path: PATH`` for a source read from disk."""
        path = getattr(self.data, "path", None)
        return f"data.path: {path}" if path else f"data.name: {self.data_cls.name}"

    @property
    def plugins_off(self) -> list[str]:
        """The plugins switched off for this run (``<plugin>.enabled = false``)."""
        return [name for name, settings in self.plugins.items() if not getattr(settings, "enabled", True)]

    def to_dict(self) -> dict[str, Any]:
        """The config as written to ``config.json`` (re-runnable with ``--config``)."""

        def named(cls: type, settings: Settings) -> dict[str, Any]:
            return {"name": cls.name, **settings.model_dump(mode="json")}

        return {
            "variant": named(self.variant_cls, self.variant),
            "data": {**named(self.data_cls, self.data), **({"flip": True} if self.data_flip else {})},
            "loss": named(self.loss_cls, self.loss),
            "regularizers": [named(c, s) for c, s in self.regularizers],
            **({"augment": named(self.augment_cls, self.augment)}
               if self.augment_cls is not None and self.augment is not None else {}),
            "train": self.train.model_dump(mode="json"),
            "optim": self.optim.model_dump(mode="json"),
            "log": self.log.model_dump(mode="json"),
            "eval": {"every": self.eval.every, "n": self.eval.n,
                     "metrics": [named(c, s) for c, s in self.eval_metrics]},
            **{name: settings.model_dump(mode="json") for name, settings in self.plugins.items()},
        }


# -- reading files and overrides ---------------------------------------------------------------


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
    check_depth(raw, "config")
    raw = copy.deepcopy(raw)
    for key in ("variant", "data", "loss", "augment"):
        if isinstance(raw.get(key), str):
            raw[key] = {"name": raw[key]}
        elif key in raw and not isinstance(raw[key], dict):
            raise ConfigError(f"{key}: expected a name or a table of settings, got {json.dumps(raw[key])}")
    return raw


def resolve(host: PluginHost, raw: dict[str, Any], sets: tuple[str, ...] | list[str] = (), *,
            stored_spec: DataSpec | None = None) -> RunConfig:
    """Validate a raw config (file merged with a base) into a :class:`RunConfig`.

    With ``stored_spec`` (a checkpoint's data spec, for sampling, translating and evaluating a trained
    run) a data section that does not resolve here (a source not installed: the user's own, a Python
    object's) becomes a stand-in that knows the recorded spec (:func:`gancore.data.unavailable_source`).

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
    data_kind = stored_spec.kind if stored_spec is not None else _data_kind(host, deep_merge(defaults, raw).get("data"))
    by_data = _normalise(variant_cls.data_defaults(variant_settings, data_kind))
    by_data.pop("data", None)  # data defaults tune training for the data; they do not choose it
    merged = deep_merge(deep_merge(defaults, by_data), raw)
    for assignment in into_defaults:
        apply_set(merged, assignment)
    final, chosen = flatten(merged), flatten(raw)
    from_data = {key: value for key, value in flatten(by_data).items()
                 if final.get(key) == value and key not in chosen}
    plugins = {name: validate(model, merged.pop(name, {}), name) for name, model in host.plugin_settings.items()}
    if stored_spec is not None:  # a trained run's config: the settings of plugins not installed here do not matter
        for key in [k for k in merged if k not in RawConfig.model_fields]:
            merged.pop(key)
    parsed = validate(RawConfig, merged, "")
    assert isinstance(parsed, RawConfig)
    data_section, data_flip = _core_flip(host, merged["data"], data_kind)
    try:
        data_cls, data_settings = _plugin_section(host.datasets, data_section, "data")
    except ConfigError as exc:
        if stored_spec is None:
            raise
        from gancore.data import unavailable_source

        section = dict(merged["data"]) if isinstance(merged.get("data"), dict) else {}
        name = str(section.pop("name", "unknown"))
        data_cls = unavailable_source(name, stored_spec.kind, str(exc))
        data_settings = data_cls.Config.model_validate(section)
    loss_cls, loss_settings = _plugin_section(host.losses, merged["loss"], "loss")
    regularizers = [
        _plugin_section(host.regularizers, section, f"regularizers.{i}")
        for i, section in enumerate(merged.get("regularizers", []))
    ]
    if loss_cls.generator_uses_real and not variant_cls.capabilities(variant_settings).generator_loss_gets_real:
        raise ConfigError(f"loss.name: the {loss_cls.name} loss needs the critic's outputs on a real batch in "
                          f"the generator step, which variant {variant_cls.name!r} does not give; choose another loss")
    _check_capabilities(variant_cls, variant_settings, parsed.train.batch_size, data_settings)
    eval_metrics = [
        _plugin_section(host.metrics, section, f"eval.metrics.{i}")
        for i, section in enumerate(merged.get("eval", {}).get("metrics", []))
    ]
    augment_cls, augment_settings = _augment_section(host, merged.get("augment"), data_kind, stored_spec)
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
        data_flip=data_flip,
        plugins=plugins,
        augment_cls=augment_cls,
        augment=augment_settings,
    )


def _check_capabilities(variant_cls: type, variant: Settings, batch_size: int, data: Settings) -> None:
    """The batch size and image size the variant's networks accept, with these settings (its capabilities)."""
    caps = variant_cls.capabilities(variant)
    name = variant_cls.name
    if batch_size < caps.min_batch_size:
        raise ConfigError(f"train.batch_size: {batch_size} is below {caps.min_batch_size}, the smallest batch the "
                          f"networks of variant {name!r} accept (their normalisation layers need more samples)")
    size = getattr(data, "image_size", None)
    if isinstance(size, int) and size < caps.min_image_size:
        raise ConfigError(f"data.image_size: {size} is below {caps.min_image_size}, the smallest image the "
                          f"networks of variant {name!r} downsample with these settings (use larger images or "
                          "fewer downsampling layers)")


def _augment_section(host: PluginHost, section: Any, kind: str,
                     stored_spec: DataSpec | None) -> tuple[type | None, Settings | None]:
    """``augment``: none (absent or null), or the registered augmentation it names, for image data."""
    if section is None:
        return None, None
    if stored_spec is not None and isinstance(section, dict) and section.get("name") not in host.augments:
        return None, None  # a trained run's augmentation matters to training only
    cls, settings = _plugin_section(host.augments, section, "augment")
    if kind != "image":
        raise ConfigError(f"augment.name: {cls.name} augments images, and the data source gives {kind} data")
    return cls, settings


def _core_flip(host: PluginHost, section: Any, kind: str) -> tuple[Any, bool]:
    """``data.flip`` for an image source that does not declare it: the core's dataset augmentation
    (random horizontal flips when batches are drawn). Returns the section without it, and the switch."""
    if not isinstance(section, dict) or "flip" not in section:
        return section, False
    name = section.get("name")
    if not isinstance(name, str) or name not in host.datasets or "flip" in host.datasets.get(name).Config.model_fields:
        return section, False  # the source's own setting, or an error validation names
    section = dict(section)
    flip = section.pop("flip")
    if not isinstance(flip, bool):
        raise ConfigError(f"data.flip: expected true or false, got {json.dumps(flip, default=str)}")
    if flip and kind != "image":
        raise ConfigError(f"data.flip: flips images, and data source {name!r} gives {kind} data")
    return section, flip


def _data_kind(host: PluginHost, section: Any) -> str:
    """The kind of data (``image``/``vector``) the data section selects, without loading it;
    ``image`` while the section does not name an installed source (validation reports that)."""
    name = section.get("name") if isinstance(section, dict) else None
    if isinstance(name, str) and name in host.datasets:
        return str(getattr(host.datasets.get(name), "data_kind", "image"))
    return "image"


def preset_settings(host: PluginHost, variant: str, preset: str | None) -> dict[str, Any]:
    """The settings of ``variant``'s preset ``preset`` (dotted keys to values; none for None)."""
    if preset is None:
        return {}
    try:
        presets = host.variants.get(variant).presets
    except PluginError as exc:
        raise ConfigError(f"variant: {exc}") from None
    if preset not in presets:
        known = f"its presets: {', '.join(presets)}" if presets else "it has none"
        raise ConfigError(f"--preset: {variant} has no preset {preset!r} ({known})")
    return dict(presets[preset].settings)


def check_variant_sets(variant: str, sets: list[str] | tuple[str, ...]) -> None:
    """``--set variant.name=X`` (or ``variant=X``) naming another variant than the command's is a
    conflict, not a silent switch."""
    for assignment in sets:
        key, _, text = assignment.partition("=")
        if key.strip() in ("variant", "variant.name"):
            value = parse_value(text)
            name = value.get("name") if isinstance(value, dict) else value
            if name is not None and name != variant:
                raise ConfigError(f"--set {key.strip()}: {name!r} conflicts with the variant named on the command line "
                                  f"({variant!r}); run `gancore run {name}` instead")


def build_raw(
    variant: str | None,
    config_file: str | Path | None = None,
    base: dict[str, Any] | None = None,
    preset: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge ``base`` (a resumed run's config), a preset's settings (:func:`preset_settings`, merged
    as data) and a config file, in that order; pass ``--set`` to :func:`resolve`."""
    raw: dict[str, Any] = _normalise(base or {})
    if preset:
        raw = deep_merge(raw, _normalise(nest(preset)))
    if config_file is not None:
        raw = deep_merge(raw, _normalise(load_file(config_file)))
    if variant is not None:
        current = raw.get("variant", {})
        if current.get("name") not in (None, variant):
            where = "the run directory holds" if base is not None else "the config file is for"
            raise ConfigError(f"variant: {where} {current['name']!r}, not {variant!r}")
        raw["variant"] = {**current, "name": variant}
    return raw
