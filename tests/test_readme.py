"""The README's two commands stay true, and CI runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S)


def test_quick_start_trains_a_variant():
    assert readme_commands()[0].endswith("gancore run dcgan --out runs/dcgan")
    assert "-r requirements.txt" in readme_commands()[0]


def test_ci_runs_the_readme_test_command():
    test_command = readme_commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


#: Plugins the quick start leaves out (they pull in a large dependency); the test command installs them.
OPTIONAL_PLUGINS = ("wandb",)


def test_requirements_install_every_plugin():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    plugins = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
    assert "-e ." in lines
    for name in plugins:
        if name in OPTIONAL_PLUGINS:
            assert f"-e plugins/{name}" not in lines and f"-e plugins/{name}" in readme_commands()[1], name
        else:
            assert f"-e plugins/{name}" in lines, name
