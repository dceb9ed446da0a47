"""Modules imported on first use, so that the CLI starts without torch.

``import torch`` takes over a second; ``gancore --help``, ``gancore plugins`` and ``gancore config``
need none of it. Modules that plugins and the registration path load write::

    torch = lazy_module("torch")
    F = lazy_module("torch.nn.functional")

and use ``torch.zeros(...)`` as before: the real module is imported at the first attribute access
(a call, ``isinstance(x, torch.Tensor)``), never at import time. Each name is read from the real
module once and kept, so rebinding it on the real module afterwards (a monkeypatch) is not seen
through the proxy: patch before the first use, or patch the proxy. Names used only in annotations
go under ``if TYPE_CHECKING:``. A class that subclasses ``nn.Module`` needs torch when it is defined:
keep such classes in a module imported where they are built (a variant's ``build()``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule(types.ModuleType):
    """Stands for a module until an attribute is read, then imports it and serves its attributes."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in ("__file__", "__path__", "__version__"):
            raise AttributeError(name)
        module = self.__dict__.get("_gancore_module")
        if module is None:
            module = self.__dict__["_gancore_module"] = importlib.import_module(self.__name__)
        value = getattr(module, name)
        # Kept: later reads are a plain attribute lookup (the training step reads torch through these
        # proxies; going through __getattr__ costs ~2 us a read, a dict lookup ~50 ns).
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        state = "imported" if self.__name__ in sys.modules else "not yet imported"
        return f"<lazy module {self.__name__!r} ({state})>"


def lazy_module(name: str) -> types.ModuleType:
    """The module ``name``, imported at the first attribute access (at once if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    return _LazyModule(name)
