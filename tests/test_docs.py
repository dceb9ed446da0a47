"""The docs stay true: every hook is documented, and the guide's example plugin installs and trains."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gancore import hookspecs
from gancore.testing import VariantContract

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE = DOCS / "example_plugin"

HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
         if name.startswith("gancore_")]


def test_there_are_hooks():
    assert {"gancore_register_variants", "gancore_register_losses", "gancore_register_regularizers",
            "gancore_register_datasets", "gancore_register_metrics", "gancore_register_commands",
            "gancore_run_start", "gancore_log", "gancore_checkpoint_saved",
            "gancore_run_end"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature_and_an_example(hook):
    text = (DOCS / "hooks.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"### `{hook}({params})`" in text, f"{hook} is missing from docs/hooks.md"
    section = text.split(f"### `{hook}(", 1)[1].split("\n### ", 1)[0]
    assert f"def {hook}(" in section, f"docs/hooks.md has no example for {hook}"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


def test_every_documented_hook_exists():
    documented = re.findall(r"^### `(gancore_\w+)\(", (DOCS / "hooks.md").read_text(), re.M)
    assert sorted(documented) == sorted(HOOKS)


def test_guide_excerpts_are_the_example_plugin_code():
    source = (EXAMPLE / "gancore_example" / "__init__.py").read_text()
    blocks = re.findall(r"```python\n# from gancore_example\n(.*?)```", (DOCS / "plugins.md").read_text(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        assert block in source, f"docs/plugins.md excerpt is not in the example plugin:\n{block}"


def make_installed(site: Path) -> None:
    """Entry-point metadata for docs/example_plugin, as `pip install -e` would leave it."""
    info = site / "gancore_example-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gancore-example\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[gancore]\nexample = gancore_example\n")


@pytest.fixture
def example_installed(tmp_path, monkeypatch):
    make_installed(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(EXAMPLE))


@pytest.mark.usefixtures("example_installed")
class TestExamplePlugin(VariantContract):
    variant = "mlp-gan"
    overrides = {"variant.hidden": 16}

    def test_provides_the_loss_and_the_variant(self, host):
        rec = host.record("example")
        assert rec.status == "ok" and rec.source == "gancore-example 0.1.0"
        assert rec.provides == {"variants": ["mlp-gan"], "losses": ["relativistic"]}

    def test_its_loss_works_with_the_builtin_dcgan(self, host, tmp_path):
        from gancore.testing import SMALL, make_config, train

        cfg = make_config(host, "dcgan", {**SMALL, "loss.name": "relativistic",
                                           "variant.generator_width": 4, "variant.critic_width": 4})
        assert train(host, cfg, tmp_path / "run").step == 2


def test_example_plugin_runs_from_the_real_command_line(tmp_path):
    make_installed(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(EXAMPLE)])}
    cmd = [sys.executable, "-m", "gancore", "run", "mlp-gan", "--out", str(tmp_path / "run"),
           "--set", "train.steps=3", "--set", "train.batch_size=8", "--set", "log.progress=false"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "done: 3 steps" in done.stdout
    assert (tmp_path / "run" / "checkpoints" / "step_0000003.safetensors").is_file()


def test_every_code_block_of_the_python_page_runs(tmp_path, monkeypatch):
    """docs/python.md, block after block in one namespace, in a fresh folder: train -> load -> sample ->
    evaluate -> export -> fine-tune, a torch dataset and a Hugging Face dataset folder."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("datasets")
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "python.md").read_text(), re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_python"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"docs/python.md block {i + 1}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # say which block failed
            raise AssertionError(f"docs/python.md block {i + 1} failed: {type(exc).__name__}: {exc}") from exc
    assert (tmp_path / "exported" / "dcgan" / "README.md").is_file()
    assert (tmp_path / "runs" / "hf" / "checkpoints").is_dir()
