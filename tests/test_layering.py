"""gancore's imports point one way: no import cycle among its modules, each layer imports only the
layers below it (docs: DESIGN "Layering"), and every public name imports first in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gancore

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gancore"

#: Bottom to top. A name matches that module; ``pkg.*`` matches a package and its submodules (the
#: longest match wins). A module may import its own layer and the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("gancore", "gancore.errors", "gancore.lazy", "gancore.files", "gancore.hookspecs",
                    "gancore.config_files", "gancore.dotted",
                    "gancore.codes", "gancore.limits", "gancore.labels", "gancore.images", "gancore.visualize",
                    "gancore.metrics.stats", "gancore.pickle_bytes", "gancore.data.cifar_batch",
                    "gancore.nets.attention")),
    ("contracts", ("gancore.interfaces", "gancore.modules", "gancore.variant", "gancore.sections",
                   "gancore.data", "gancore.metrics")),
    ("built-ins", ("gancore.losses", "gancore.regularizers", "gancore.augment.*", "gancore.nets.*", "gancore.games",
                   "gancore.data.*",
                   "gancore.metrics.*", "gancore.translation.*")),
    ("config and host", ("gancore.config", "gancore.plugins", "gancore.confdoc", "gancore.resume_rules")),
    ("kernel", ("gancore.kernel.*",)),
    ("inference, evaluation, report", ("gancore.inference", "gancore.evaluation", "gancore.report",
                                        "gancore.export")),
    ("default plugins", ("gancore.default_plugins.*",)),
    ("composition root", ("gancore.app",)),
    ("entry points", ("gancore.cli", "gancore.cli_data", "gancore.cli_sweep", "gancore.cli_weights", "gancore.__main__",
                      "gancore.sweep.*",
                      "gancore.testing", "gancore.api")),
]


def _layer(module: str) -> int:
    matches = []
    for i, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            package = pattern.removesuffix(".*")
            if module == pattern or (pattern.endswith(".*") and (module == package
                                                                  or module.startswith(package + "."))):
                matches.append((len(pattern) + (pattern == module), i))
    if not matches:
        raise AssertionError(f"{module}: in no layer of tests/test_layering.py's LAYERS; add it where it belongs")
    return max(matches)[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[tuple[str, int]]:
    """Modules of gancore that ``module`` imports anywhere (functions included), but for
    ``if TYPE_CHECKING:`` blocks, with the line of each import."""
    names: set[tuple[str, int]] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(child: ast.AST) -> None:
        if isinstance(child, ast.Import):
            names.update((a.name, child.lineno) for a in child.names)
        elif isinstance(child, ast.ImportFrom):
            if child.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - (child.level - 1)]
                target = ".".join(base + ([child.module] if child.module else []))
            else:
                target = child.module or ""
            names.add((target, child.lineno))
            names.update((f"{target}.{a.name}", child.lineno) for a in child.names)
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                visit_node(other)
        else:
            visit(child)

    visit(ast.parse(path.read_text()))
    resolved = set()
    for name, line in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.add((name, line))
    return resolved


def _graph() -> dict[str, set[tuple[str, int]]]:
    known = _modules()
    return {m: _imports(m, p, known) for m, p in known.items()}


def test_no_import_cycle() -> None:
    graph = {m: {t for t, _ in edges} for m, edges in _graph().items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"import cycles among gancore's modules: {cycles}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, edges in sorted(_graph().items()):
        for target, line in sorted(edges):
            if _layer(target) > _layer(module):
                wrong.append(f"{module}:{line} imports {target} ({LAYERS[_layer(module)][0]} -> "
                             f"{LAYERS[_layer(target)][0]})")
    assert not wrong, "imports that point up the layers:\n" + "\n".join(wrong)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The walk above finds function-level imports and skips TYPE_CHECKING ones."""
    pkg = tmp_path / "gancore"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from gancore.b import x\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gancore import c\n"
                              "from . import a\n")
    (pkg / "c.py").write_text("")
    known = {"gancore": pkg / "__init__.py", "gancore.a": pkg / "a.py", "gancore.b": pkg / "b.py",
             "gancore.c": pkg / "c.py"}
    assert {t for t, _ in _imports("gancore.a", known["gancore.a"], known)} == {"gancore.b"}
    assert {t for t, _ in _imports("gancore.b", known["gancore.b"], known)} == {"gancore.a", "gancore"}
    assert _layer("gancore.kernel.trainer") > _layer("gancore.metrics") > _layer("gancore.errors")


def test_every_public_name_imports_first_in_a_fresh_interpreter() -> None:
    """``from gancore import X`` as a plugin's first line, and ``from gancore import hookimpl, X``, for each X."""
    names = sorted(n for n in gancore.__all__ if n != "__version__")
    codes = [f"from gancore import {n}\nprint(repr({n}))" for n in names]
    codes += [f"from gancore import hookimpl, {n}" for n in names if n != "hookimpl"]
    failed = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(lambda c: (c, subprocess.run([sys.executable, "-c", c], capture_output=True, text=True,
                                                     timeout=300)), codes)
        for code, proc in runs:
            if proc.returncode != 0:
                failed.append(f"{code.splitlines()[0]}: {(proc.stderr.strip().splitlines() or [''])[-1]}")
    assert not failed, "\n".join(failed)
