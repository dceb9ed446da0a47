"""The plugin contract, written down and enforced: plugins import only the documented public API,
every public name has its reference in docs/api.md, and the core stays in files of a readable size."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "api.md"

#: The modules a plugin may import (docs/api.md documents each).
PUBLIC = ("gancore", "gancore.nets", "gancore.games", "gancore.losses", "gancore.translation", "gancore.testing")

#: Files of gancore/ allowed past 400 lines, and why.
LONG_FILES: dict[str, str] = {}


def plugin_sources() -> list[Path]:
    files = [p for p in (ROOT / "plugins").glob("*/gancore_*/**/*.py")]
    files += list((ROOT / "docs" / "example_plugin").glob("gancore_example/**/*.py"))
    assert len(files) >= 6
    return files


def gancore_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import of gancore or its submodules in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gancore" or node.module.startswith("gancore."):
                found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "gancore" or alias.name.startswith("gancore."):
                    found.append((node.lineno, alias.name, []))
    return found


def test_plugins_import_only_the_public_api():
    bad = []
    for path in plugin_sources():
        for line, module, names in gancore_imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module not in PUBLIC:
                bad.append(f"{where}: imports {module}, not a public module ({', '.join(PUBLIC)})")
                continue
            exported = set(importlib.import_module(module).__all__)
            bad += [f"{where}: {module}.{name} is not in {module}.__all__" for name in names if name not in exported]
    assert not bad, "\n".join(bad)


def test_the_lint_rule_catches_an_internal_import(tmp_path):
    path = tmp_path / "plugin.py"
    path.write_text("from gancore.kernel.trainer import Trainer\nimport gancore.config\nfrom gancore import hookimpl\n")
    modules = [m for _, m, _ in gancore_imports(path)]
    assert modules == ["gancore.kernel.trainer", "gancore.config", "gancore"]
    assert [m for m in modules if m not in PUBLIC] == ["gancore.kernel.trainer", "gancore.config"]


@pytest.mark.parametrize("module", PUBLIC)
def test_every_public_name_is_documented(module):
    text = API_DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    section = next((s for s in sections if s.startswith(f"`{module}`")), None)
    assert section is not None, f"docs/api.md has no section for {module}"
    names = importlib.import_module(module).__all__
    missing = [n for n in names if not re.search(rf"`{re.escape(n)}[`(]", section)]
    assert not missing, f"docs/api.md's {module} section does not document {missing}"


def test_no_core_file_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "gancore").rglob("*.py")}
    over = {p: n for p, n in long.items() if n > 400 and p not in LONG_FILES}
    assert not over, f"split these (or say why in LONG_FILES): {over}"
