"""The composition root: assembles gancore from its default plugins and the installed ones.

Everything below this module knows how plugins are hosted (:mod:`gancore.plugins`) but not which
exist; here the core's default plugins (:mod:`gancore.default_plugins`) and the ``gancore`` entry
points are put together, and the one process-wide host that the CLI and the Python API share lives.
"""

from __future__ import annotations

from collections.abc import Iterable

from gancore.default_plugins import default_plugins
from gancore.plugins import PluginHost, build_host, entry_point_candidates

__all__ = ["host", "load_plugins", "reset_host"]


def load_plugins(*, entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()) -> PluginHost:
    """A fresh host: the core's default plugins, then the installed entry points, then ``extra``.

    :param entry_points: load the installed ``gancore`` entry points.
    :param extra: ``(name, plugin)`` pairs registered after them (tests, embedding apps).
    """
    candidates = list(default_plugins())
    if entry_points:
        candidates.extend(entry_point_candidates())
    candidates.extend((name, getattr(p, "__name__", repr(p)), p) for name, p in extra)
    return build_host(candidates)


_host: PluginHost | None = None


def host() -> PluginHost:
    """The plugins of this process, loaded once (the CLI and :func:`gancore.train` share it)."""
    global _host
    if _host is None:
        _host = load_plugins()
    return _host


def reset_host() -> None:
    """Forget the process's plugins: the next :func:`host` loads them again (tests change what is installed)."""
    global _host
    _host = None
