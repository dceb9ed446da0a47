"""Plugins with their own settings (``gancore_plugin_settings``): a lifecycle plugin's section is set
with ``--set <plugin>.<key>``, validated in one line, shown by ``gancore config``, written to
``config.json``, read by its hooks, and ``<plugin>.enabled=false`` switches its hooks off."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from gancore import Settings, hookimpl
from gancore.app import load_plugins
from gancore.confdoc import describe
from gancore.errors import ConfigError
from gancore.testing import make_config, train

TINY = {"train.steps": 2, "train.batch_size": 8, "log.every": 1, "log.sample_every": 100, "log.progress": False}


class NotesSettings(Settings):
    """Writes a line per logged step."""

    project: str = Field("default-project", description="Where the notes go.")
    every: int = Field(1, ge=1, description="Note every k-th step.")


class Notes:
    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    @hookimpl
    def gancore_plugin_settings(self) -> type:
        return NotesSettings

    @hookimpl
    def gancore_step_end(self, step, run) -> None:
        settings = run.config.plugin_settings("notes")
        if step % settings.every == 0:
            self.seen.append((step, settings.project))


class BadSettings:
    @hookimpl
    def gancore_plugin_settings(self) -> type:
        return dict


@pytest.fixture
def notes():
    return Notes()


@pytest.fixture
def host(notes):
    return load_plugins(extra=[("notes", notes), ("bad-settings", BadSettings())])


def test_settings_reach_the_hooks_and_the_run_files(host, notes, tmp_path):
    cfg = make_config(host, "dcgan", {**TINY, "notes.project": "mnist-small", "notes.every": 2})
    assert cfg.plugin_settings("notes").project == "mnist-small"
    train(host, cfg, tmp_path / "r")
    assert notes.seen == [(2, "mnist-small")]
    written = json.loads((tmp_path / "r" / "config.json").read_text())
    assert written["notes"] == {"project": "mnist-small", "every": 2, "enabled": True}
    text = describe(cfg)
    assert "[notes]  # plugin notes's settings: Writes a line per logged step." in text
    assert 'project = "mnist-small"' in text and "enabled = true" in text


def test_enabled_false_switches_the_plugin_off_for_the_run(host, notes, tmp_path):
    train(host, make_config(host, "dcgan", {**TINY, "notes.enabled": False}), tmp_path / "r")
    assert notes.seen == []
    train(host, make_config(host, "dcgan", TINY), tmp_path / "s")
    assert [step for step, _ in notes.seen] == [1, 2]


@pytest.mark.parametrize(("sets", "message"), [
    ({"notes.every": 0}, "notes.every: Input should be greater than or equal to 1, got 0"),
    ({"notes.projekt": "x"}, "notes.projekt: unknown key (allowed: enabled, every, project)"),
    ({"notes.enabled": "maybe"}, "notes.enabled: Input should be a valid boolean"),
])
def test_bad_settings_are_one_line_errors(host, sets, message):
    with pytest.raises(ConfigError) as err:
        make_config(host, "dcgan", sets)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_plugin_whose_settings_are_not_a_model_is_broken_not_fatal(host):
    record = host.record("bad-settings")
    assert record.status == "broken" and "expected a gancore.Settings subclass" in record.error
    assert "bad-settings" not in host.plugin_settings
