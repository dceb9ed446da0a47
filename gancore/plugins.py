"""The plugin host and the typed registries: knows how plugins load, not which ones.

:func:`build_host` builds a fresh :class:`PluginHost` from the candidates it is given (the
application's default plugins and the entry points, chosen by :mod:`gancore.app`, the composition
root), each registered inside its own error handling. A broken plugin is recorded (``gancore
plugins`` shows it with its error) and its error is raised only when something it would provide is
asked for. Nothing here imports anything above the contracts.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from gancore import hookspecs
from gancore.errors import PluginError

ENTRY_POINT_GROUP = "gancore"
DISABLE_ENV = "GANCORE_DISABLE_PLUGINS"

T = TypeVar("T")


@dataclass
class PluginRecord:
    """One plugin as the host saw it."""

    name: str
    source: str
    """The distribution and version (or module) it came from."""
    status: str = "ok"
    """``ok``, ``broken`` or ``disabled``."""
    error: str = ""
    provides: dict[str, list[str]] = field(default_factory=dict)
    heavy_imports: list[str] = field(default_factory=list)
    """Slow modules (torch, scikit-learn) that loading this plugin imported: every command pays for them."""


#: Modules whose import takes a large part of a second: no plugin should import them when loaded.
HEAVY_MODULES = ("torch", "sklearn", "scipy", "torchvision")


class DuplicateNameError(PluginError):
    """Two plugins registered the same name in one registry."""

    def __init__(self, registry: Registry[Any], name: str, message: str) -> None:
        super().__init__(message)
        self.registry = registry
        self.name = name


class Registry(Generic[T]):
    """Named classes of one kind (variants, losses, ...), each remembered with its source."""

    def __init__(self, kind: str, base: type, host: PluginHost | None = None) -> None:
        self.kind = kind
        self.base = base
        self._host = host
        self._items: dict[str, tuple[type[T], str]] = {}
        self.conflicts: dict[str, str] = {}
        """Names two plugins both registered: asking for one raises the duplicate error."""

    def add(self, cls: Any, source: str) -> None:
        """Register ``cls`` from ``source``; reject a nameless class and a duplicate name."""
        if not isinstance(cls, type) or not issubclass(cls, self.base):
            raise PluginError(
                f"{source}: registered {cls!r} as a {self.kind}, "
                f"expected a subclass of {self.base.__name__}"
            )
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"{source}: {self.kind} class {cls.__qualname__} has no `name` "
                "(set a class attribute `name: ClassVar[str]`)"
            )
        if name in self._items:
            other, other_source = self._items[name]
            raise DuplicateNameError(
                self,
                name,
                f"duplicate {self.kind} name {name!r}: {cls.__module__}.{cls.__qualname__} "
                f"from {source} and {other.__module__}.{other.__qualname__} from {other_source}",
            )
        self._items[name] = (cls, source)

    def remove(self, name: str) -> None:
        del self._items[name]

    def get(self, name: str) -> type[T]:
        """The class called ``name``, or an error listing what is installed."""
        if name in self.conflicts:
            raise PluginError(self.conflicts[name])
        if name in self._items:
            return self._items[name][0]
        message = f"unknown {self.kind} {name!r}; installed: {', '.join(self.names()) or 'none'}"
        close = difflib.get_close_matches(name, self.names(), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        if self._host is not None:
            for record in self._host.records:
                if record.status == "broken" and record.name == name:
                    message = (
                        f"{self.kind} {name!r} is not available: plugin {record.name!r} "
                        f"({record.source}) failed to load: {record.error}"
                    )
                elif record.status == "disabled" and record.name == name:
                    message = f"{self.kind} {name!r} is disabled by {DISABLE_ENV}"
        raise PluginError(message)

    def source(self, name: str) -> str:
        return self._items[name][1]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


# Registration hook -> (registry attribute, human name of the kind).
_REGISTRATION_HOOKS = {
    "gancore_register_variants": ("variants", "variant"),
    "gancore_register_losses": ("losses", "loss"),
    "gancore_register_regularizers": ("regularizers", "regularizer"),
    "gancore_register_datasets": ("datasets", "dataset"),
    "gancore_register_metrics": ("metrics", "metric"),
    "gancore_register_augments": ("augments", "augment"),
}


class PluginHost:
    """The loaded plugins: a pluggy manager, the registries, and what failed to load.

    The core talks to plugins through this facade, never through ``pm.hook`` directly.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        from gancore.data import DataSource
        from gancore.interfaces import Augment, Loss, Regularizer
        from gancore.metrics import Metric
        from gancore.variant import Variant

        self.pm = pm
        self.records: list[PluginRecord] = []
        self.variants: Registry[Variant] = Registry("variant", Variant, self)
        self.losses: Registry[Loss] = Registry("loss", Loss, self)
        self.regularizers: Registry[Regularizer] = Registry("regularizer", Regularizer, self)
        self.datasets: Registry[DataSource] = Registry("dataset", DataSource, self)
        self.metrics: Registry[Metric] = Registry("metric", Metric, self)
        self.augments: Registry[Augment] = Registry("augment", Augment, self)
        self.plugin_settings: dict[str, type[Any]] = {}
        """Plugin name -> its settings model (``gancore_plugin_settings``; ``enabled`` added)."""

    def registry(self, kind: str) -> Registry[Any]:
        """The registry called ``kind`` (``variants``, ``losses``, ...)."""
        return getattr(self, kind)

    registry_kinds = tuple(attr for attr, _ in _REGISTRATION_HOOKS.values())

    def record(self, name: str) -> PluginRecord:
        return next(r for r in self.records if r.name == name)

    def lifecycle(self, echo: Any = print, off: Iterable[str] = ()) -> Lifecycle:
        """A dispatcher of the run lifecycle hooks for one run (see :class:`Lifecycle`); the plugins in
        ``off`` (``<plugin>.enabled = false``) are skipped."""
        hooks = Lifecycle(self, echo)
        for name in off:
            hooks.disabled[name] = f"switched off by {name}.enabled = false"
        return hooks

    def register_commands(self, cli: Any) -> None:
        for impl in self.pm.hook.gancore_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except Exception as exc:  # a plugin's bug must not take the tool down
                self.mark_broken(impl.plugin_name, exc)

    def mark_broken(self, plugin_name: str, exc: BaseException) -> None:
        """Record that ``plugin_name`` failed, with a one-line description of ``exc``."""
        rec = self.record(plugin_name)
        rec.status = "broken"
        rec.error = str(exc) if isinstance(exc, PluginError) else _describe(exc)


class Lifecycle:
    """Calls the run lifecycle hooks of one run, each implementation inside its own error handling.

    A hook implementation that raises is reported in one line (which plugin, which hook, the
    error), that plugin's lifecycle hooks are skipped for the rest of the run, and training goes
    on. One exception: a :class:`~gancore.ConfigError` raised by ``gancore_run_start`` refuses the
    run (a plugin that cannot work with the run's settings says so before any step).
    Implementations are called in pluggy's order (the last registered first; ``tryfirst`` and
    ``trylast`` honoured); hook wrappers are not called.
    """

    def __init__(self, host: PluginHost, echo: Any = print) -> None:
        self.host = host
        self.echo = echo
        self.disabled: dict[str, str] = {}
        """Plugins switched off for this run, with the line that said why."""

    def call(self, hook: str, **kwargs: Any) -> None:
        from gancore.errors import ConfigError

        caller = getattr(self.host.pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):
            if impl.plugin_name in self.disabled or impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
            except Exception as exc:  # a plugin's bug must not end the run
                if isinstance(exc, ConfigError) and hook == "gancore_run_start":
                    raise
                self._disable(impl.plugin_name, hook, kwargs, exc)

    def _disable(self, plugin: str, hook: str, kwargs: dict[str, Any], exc: BaseException) -> None:
        source = next((r.source for r in self.host.records if r.name == plugin), plugin)
        step = kwargs.get("step")
        where = f" at step {step}" if isinstance(step, int) else ""
        from gancore.errors import PluginError

        if isinstance(exc, PluginError):  # the plugin says whose code failed (a variant's preview, ...)
            line = (f"{exc} (in plugin {plugin!r}'s {hook}{where}); "
                    f"plugin {plugin!r}'s lifecycle hooks are off for the rest of this run")
        else:
            line = (f"plugin {plugin!r} ({source}) failed in {hook}{where}: {_describe(exc)}; "
                    "its lifecycle hooks are off for the rest of this run")
        self.disabled[plugin] = line
        self.echo(f"warning: {line}")


def disabled_plugins() -> set[str]:
    """Names listed in ``GANCORE_DISABLE_PLUGINS`` (comma-separated)."""
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _source_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is not None:
        return f"{dist.metadata['Name']} {dist.version}"
    return ep.value


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def entry_point_candidates() -> list[tuple[str, str, md.EntryPoint]]:
    """The installed ``gancore`` entry points as ``(name, source, entry point)``, by name, each once."""
    seen: set[str] = set()
    found = []
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution found twice on sys.path
            continue
        seen.add(ep.name)
        found.append((ep.name, _source_of(ep), ep))
    return found


def build_host(candidates: Iterable[tuple[str, str, Any]]) -> PluginHost:
    """A fresh :class:`PluginHost` with ``candidates`` registered in order.

    :param candidates: ``(plugin name, source, plugin)`` triples; a plugin is a module, an object with
        hook implementations, or an entry point (loaded here, inside its own error handling).
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm)
    disabled = disabled_plugins()
    for name, source, obj in candidates:
        record = PluginRecord(name=name, source=source)
        host.records.append(record)
        if name in disabled:
            record.status = "disabled"
            continue
        before = [m for m in HEAVY_MODULES if m not in sys.modules]
        try:
            plugin = obj.load() if isinstance(obj, md.EntryPoint) else obj
            pm.register(plugin, name=name)
        except Exception as exc:  # one broken plugin must not take the tool down
            record.status, record.error = "broken", _describe(exc)
        record.heavy_imports = [m for m in before if m in sys.modules]
    _reject_unknown_hooks(host)
    _fill_registries(host)
    _collect_settings(host)
    return host


#: Config sections of the core: no plugin's settings may take these names.
CORE_SECTIONS = frozenset({"variant", "data", "loss", "regularizers", "augment", "train", "optim", "log", "eval",
                           "name"})


def _collect_settings(host: PluginHost) -> None:
    """Ask each plugin for its settings model (``gancore_plugin_settings``); a bad answer breaks the plugin."""
    from pydantic import Field, create_model

    from gancore.interfaces import Settings

    for impl in host.pm.hook.gancore_plugin_settings.get_hookimpls():
        name = impl.plugin_name
        try:
            model = impl.function()
            if model is None:
                continue
            if not (isinstance(model, type) and issubclass(model, Settings)):
                raise PluginError(f"plugin {name!r}: gancore_plugin_settings returned {model!r}, "
                                  "expected a gancore.Settings subclass")
            if name in CORE_SECTIONS or not name.isidentifier():
                raise PluginError(f"plugin {name!r}: its settings cannot be a config section of that name "
                                  "(a core section, or not an identifier)")
            if "enabled" not in model.model_fields:
                model = create_model(model.__name__, __base__=model, __doc__=model.__doc__,
                                     enabled=(bool, Field(True, description="false: this plugin's lifecycle hooks "
                                                                            "are off for the run.")))
            host.plugin_settings[name] = model
        except Exception as exc:  # one broken plugin must not take the tool down
            host.mark_broken(name, exc)
            host.pm.unregister(name=name)


def _reject_unknown_hooks(host: PluginHost) -> None:
    """A plugin implementing a misspelled hook is broken (pluggy's ``check_pending``)."""
    while True:
        try:
            host.pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = host.pm.get_name(exc.plugin) or str(exc.plugin)
            host.pm.unregister(exc.plugin)
            rec = host.record(name)
            rec.status, rec.error = "broken", f"PluginValidationError: {exc}"


def _fill_registries(host: PluginHost) -> None:
    """Ask each plugin for its classes; a plugin whose registration fails adds nothing."""
    impls: dict[str, list[tuple[str, Any]]] = {}
    for hook_name, (attr, _) in _REGISTRATION_HOOKS.items():
        for impl in getattr(host.pm.hook, hook_name).get_hookimpls():
            impls.setdefault(impl.plugin_name, []).append((attr, impl.function))
    for record in host.records:
        if record.status != "ok":
            continue
        added: list[tuple[Registry[Any], str]] = []
        try:
            for attr, function in impls.get(record.name, []):
                registry = host.registry(attr)
                for cls in function() or []:
                    registry.add(cls, record.source)
                    added.append((registry, cls.name))
                    record.provides.setdefault(attr, []).append(cls.name)
        except Exception as exc:  # one broken plugin must not take the tool down
            for registry, name in added:
                registry.remove(name)
            record.provides.clear()
            host.mark_broken(record.name, exc)
            if isinstance(exc, DuplicateNameError):
                exc.registry.conflicts[exc.name] = str(exc)
