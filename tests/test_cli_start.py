"""The CLI's registration path imports neither torch nor scikit-learn (issue 15: a CLI that starts fast).

Not a timed test: each command runs in a fresh interpreter with every installed plugin loaded, and
the test reads which heavy modules it imported. ``benchmarks/cli_start.py`` measures the seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gancore.plugins import HEAVY_MODULES

PROBE = """
import json, sys
from gancore.cli import main
sys.argv = ["gancore", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\nPROBE " + json.dumps({"code": code, "heavy": [m for m in HEAVY_MODULES if m in sys.modules]}))
""".replace("HEAVY_MODULES", repr(HEAVY_MODULES))


def probe(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True,
                          timeout=120)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, done.stdout + done.stderr
    return json.loads(line[-1][len("PROBE "):])


@pytest.fixture(scope="module")
def pack_file(tmp_path_factory):
    from click.testing import CliRunner

    from gancore.cli import cli

    out = tmp_path_factory.mktemp("pack") / "digits.gcpack"
    result = CliRunner().invoke(cli, ["data", "pack", "digits", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("args", [
    ["--help"], ["plugins"], ["list"], ["config", "dcgan"], ["config", "vaegan"], ["config", "cyclegan"],
    ["run", "--help"], ["data", "--help"],
])
def test_registration_commands_import_no_heavy_module(args):
    result = probe(*args)
    assert result["code"] == 0
    assert result["heavy"] == [], f"gancore {' '.join(args)} imported {result['heavy']}"


def test_data_info_imports_no_heavy_module(pack_file):
    result = probe("data", "info", str(pack_file))
    assert result == {"code": 0, "heavy": []}


def test_every_installed_plugin_loads_without_heavy_imports():
    from gancore.app import load_plugins

    # in this process torch is already imported, so read what `gancore plugins` says in a fresh one
    done = subprocess.run([sys.executable, "-m", "gancore", "plugins"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "note: imports" not in done.stdout, done.stdout
    names = {rec.name for rec in load_plugins().records}
    assert {"dcgan", "wgan", "cgan", "cyclegan", "siamese", "pix2pix", "infogan", "vae"} <= names


def test_a_plugin_that_imports_torch_is_named(tmp_path):
    """`gancore plugins` names a plugin whose import pulled torch in (the slow one a user installed)."""
    site = tmp_path / "site"
    (site / "slow_plugin").mkdir(parents=True)
    (site / "slow_plugin" / "__init__.py").write_text("import torch  # noqa: F401\n")
    info = site / "slow_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gancore]\nslow = slow_plugin\n")
    env_path = f"{site}:{':'.join(p for p in sys.path if p)}"
    done = subprocess.run([sys.executable, "-m", "gancore", "plugins"], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    slow = done.stdout.split("\nslow ", 1)[1].split("\n")[:2]
    assert "note: imports torch when loaded" in slow[1], done.stdout


def test_a_lazy_module_imports_on_first_attribute_access():
    from gancore.lazy import lazy_module

    done = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom gancore.lazy import lazy_module\nm = lazy_module('json.tool')\n"
        "before = 'json.tool' in sys.modules\nm.main\nprint(before, 'json.tool' in sys.modules)")],
        capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr
    assert lazy_module("json") is sys.modules["json"]  # already imported: the module itself
    with pytest.raises(ModuleNotFoundError):
        _ = lazy_module("no_such_module_anywhere").anything
