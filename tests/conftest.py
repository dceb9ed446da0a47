"""Shared fixtures: a fresh plugin host per test, and fake installed plugin distributions."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gancore import cli as cli_module
from gancore.app import load_plugins
from gancore.plugins import PluginHost


@pytest.fixture
def host() -> PluginHost:
    return load_plugins()


@pytest.fixture(autouse=True, scope="session")
def _own_thread_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's runs (and their subprocesses) share cores only with each other: gancore runs elsewhere
    on the machine do not change their thread counts (``train.threads = auto``), so runs compared
    bitwise stay comparable."""
    import os

    before = os.environ.get("GANCORE_SHARE_DIR")
    os.environ["GANCORE_SHARE_DIR"] = str(tmp_path_factory.mktemp("thread-registry"))
    yield
    if before is None:
        os.environ.pop("GANCORE_SHARE_DIR", None)
    else:
        os.environ["GANCORE_SHARE_DIR"] = before


@pytest.fixture(autouse=True)
def _fresh_cli_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees the plugins as installed at that moment."""
    monkeypatch.delenv("GANCORE_DISABLE_PLUGINS", raising=False)
    cli_module.reset_host()
    yield
    cli_module.reset_host()


InstallFn = Callable[..., Path]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallFn:
    """Install a one-module plugin distribution through real entry-point metadata.

    Writes ``<module>.py`` and a ``<dist>.dist-info`` (METADATA + entry_points.txt) into a
    folder put on ``sys.path``, exactly what pip leaves behind, so ``importlib.metadata``
    discovers it as an installed distribution.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(name: str, source: str, dist: str | None = None, module: str | None = None) -> Path:
        dist = dist or f"gancore-{name}"
        module = module or f"gancore_test_{name.replace('-', '_')}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[gancore]\n{name} = {module}\n")
        return site

    return install
