"""Plugin discovery through entry points, broken plugins, duplicates, disabling, registries."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gancore import Loss, hookimpl
from gancore.app import load_plugins
from gancore.cli import cli
from gancore.errors import PluginError
from gancore.plugins import Registry

CUSTOM_LOSS = """
from gancore import Loss, hookimpl

class Half(Loss):
    '''Half the wasserstein loss.'''
    name = "half-wasserstein"

    def critic_loss(self, real_out, fake_out):
        return 0.5 * (fake_out.float().mean() - real_out.float().mean())

    def generator_loss(self, fake_out, real_out=None):
        return -0.5 * fake_out.float().mean()

@hookimpl
def gancore_register_losses():
    return [Half]
"""


def test_core_builtins_are_registered_through_hooks(host):
    assert {"nonsaturating", "minimax", "least-squares", "hinge", "wasserstein"} <= set(host.losses)
    assert {"digits", "image-folder"} <= set(host.datasets)
    builtin = host.record("gancore.builtin")
    assert builtin.status == "ok" and "nonsaturating" in builtin.provides["losses"]


def test_variant_plugin_found_through_its_entry_point(host):
    assert "dcgan" in host.variants
    assert host.variants.source("dcgan").startswith("gancore-dcgan ")


def test_entry_point_plugin_is_discovered(install_plugin):
    install_plugin("half", CUSTOM_LOSS)
    host = load_plugins()
    assert "half-wasserstein" in host.losses
    assert host.record("half").source == "gancore-half 0.1"


def test_broken_plugin_is_reported_and_does_not_stop_the_tool(install_plugin):
    install_plugin("wobbly", "import no_such_module_anywhere\n")
    host = load_plugins()
    rec = host.record("wobbly")
    assert rec.status == "broken"
    assert "ModuleNotFoundError" in rec.error and "no_such_module_anywhere" in rec.error
    assert "dcgan" in host.variants  # the rest still works
    with pytest.raises(PluginError, match="plugin 'wobbly' .* failed to load: ModuleNotFoundError"):
        host.variants.get("wobbly")
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "wobbly" in result.output and "broken" in result.output
    assert "no_such_module_anywhere" in result.output
    assert CliRunner().invoke(cli, ["list", "losses"]).exit_code == 0


def test_asking_for_a_broken_plugin_through_the_cli_names_its_error(install_plugin):
    install_plugin("wobbly", "raise RuntimeError('boom at import')\n")
    result = CliRunner().invoke(cli, ["run", "wobbly", "--dry-run"])
    assert result.exit_code == 2
    assert "failed to load: RuntimeError: boom at import" in result.output
    assert "Traceback" not in result.output


def test_misspelled_hook_marks_the_plugin_broken(install_plugin):
    install_plugin("typo", "from gancore import hookimpl\n\n@hookimpl\ndef gancore_register_loses():\n    return []\n")
    host = load_plugins()
    assert host.record("typo").status == "broken"
    assert "gancore_register_loses" in host.record("typo").error


def test_duplicate_name_names_both_sources(install_plugin):
    install_plugin("half", CUSTOM_LOSS)
    install_plugin("half2", CUSTOM_LOSS.replace("Half(Loss)", "Other(Loss)").replace("[Half]", "[Other]"))
    host = load_plugins()
    assert host.record("half").status == "ok"
    rec = host.record("half2")
    assert rec.status == "broken"
    assert "duplicate loss name 'half-wasserstein'" in rec.error
    assert "gancore-half 0.1" in rec.error and "gancore-half2 0.1" in rec.error
    with pytest.raises(PluginError, match="duplicate loss name"):
        host.losses.get("half-wasserstein")


def test_disable_env_skips_named_plugins(install_plugin, monkeypatch):
    install_plugin("half", CUSTOM_LOSS)
    monkeypatch.setenv("GANCORE_DISABLE_PLUGINS", "half, dcgan")
    host = load_plugins()
    assert host.record("half").status == "disabled"
    assert "half-wasserstein" not in host.losses
    with pytest.raises(PluginError, match="disabled by GANCORE_DISABLE_PLUGINS"):
        host.variants.get("dcgan")


def test_registry_rejects_nameless_and_wrong_classes():
    reg: Registry[Loss] = Registry("loss", Loss)

    class NoName(Loss):
        def critic_loss(self, r, f):
            return r

        def generator_loss(self, f, r=None):
            return f

    with pytest.raises(PluginError, match="has no `name`"):
        reg.add(NoName, "test")
    with pytest.raises(PluginError, match="expected a subclass of Loss"):
        reg.add(int, "test")


def test_unknown_name_lists_installed_and_suggests(host):
    with pytest.raises(PluginError) as info:
        host.losses.get("hinj")
    message = str(info.value)
    assert "unknown loss 'hinj'" in message and "wasserstein" in message
    assert "did you mean 'hinge'?" in message


def test_extra_plugins_and_lifecycle_hooks(tmp_path):
    seen = []

    class Recorder:
        @hookimpl
        def gancore_log(self, step, record):
            seen.append(("log", step))

        @hookimpl
        def gancore_checkpoint_saved(self, step, path):
            seen.append(("ckpt", step))

        @hookimpl
        def gancore_run_end(self, run_dir, step, status):
            seen.append(("end", status))

    from gancore.testing import SMALL, make_config, train

    host = load_plugins(extra=[("recorder", Recorder())])
    cfg = make_config(host, "dcgan", {**SMALL, "variant.generator_width": 4,
                                       "variant.critic_width": 4})
    train(host, cfg, tmp_path / "run")
    assert ("log", 1) in seen and ("ckpt", 2) in seen and seen[-1] == ("end", "completed")


def test_plugin_commands_are_added(install_plugin):
    install_plugin("hello", """
import click
from gancore import hookimpl

@hookimpl
def gancore_register_commands(cli):
    @cli.command()
    def hello():
        '''Say hello.'''
        click.echo("hello from a plugin")
""")
    result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0, result.output
    assert "hello from a plugin" in result.output
