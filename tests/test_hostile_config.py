"""Hostile configs: whatever a config file or a --set holds, resolving it gives a config or one
ConfigError line naming the key — never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gancore.app import load_plugins
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError

HOST = load_plugins()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=8))
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(st.sampled_from(
                                                         ["variant", "data", "loss", "train", "optim", "log",
                                                          "name", "steps", "lr", "image_size", "critic",
                                                          "regularizers", "x"]), kids, max_size=4)), max_leaves=12)


def resolves_or_config_error(raw=None, config_file=None, sets=()) -> None:
    try:
        resolve(HOST, build_raw("dcgan", config_file, base=raw), list(sets))
    except ConfigError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(tree=st.dictionaries(st.sampled_from(["variant", "data", "loss", "train", "optim", "log", "fid"]), trees,
                            max_size=4))
def test_any_config_tree_resolves_or_is_one_config_error(tree, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "c.json"
    path.write_text(json.dumps(tree))
    resolves_or_config_error(config_file=path)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(["train.steps", "optim.critic.lr", "variant", "data", "data.image_size", "loss.name",
                            "regularizers.0.weight", "log.every", "variant.latent_dim", "optim.generator.betas"]),
       value=st.one_of(st.text(max_size=12), trees.map(json.dumps)))
def test_any_set_resolves_or_is_one_config_error(key, value):
    resolves_or_config_error(sets=[f"{key}={value}"])


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("variant = 5\n", ".toml", "variant: expected a name or a table of settings, got 5"),
    ("variant = [1, 2]\n", ".toml", "variant: expected a name or a table of settings"),
    ('{"data": 3}', ".json", "data: expected a name or a table of settings"),
    ("[" * 10000 + "]" * 10000, ".json", "deeper than 32 levels"),
    ('{"train": ' * 40 + "1" + "}" * 40, ".json", "deeper than 32 levels"),
])
def test_the_issue_cases_in_files(tmp_path, text, suffix, message):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve(HOST, build_raw("dcgan", path))


@pytest.mark.parametrize(("assignment", "message"), [
    ("variant.latent_dim=" + "[" * 10000 + "]" * 10000, "deeper than 32 levels"),
    ("optim.critic.lr=1e39", "optim.critic.lr: must be a finite number representable in float32"),
    ("optim.generator.lr=Infinity", "optim.generator.lr"),
    ("optim.generator.eps=1e300", "optim.generator.eps"),
])
def test_the_issue_cases_in_sets(assignment, message):
    with pytest.raises(ConfigError, match=message):
        resolve(HOST, build_raw("dcgan"), [assignment])


def test_set_variant_name_to_another_variant_is_a_conflict():
    from click.testing import CliRunner

    from gancore.cli import cli

    for assignment in ("variant.name=wgan", 'variant={"name": "wgan"}'):
        result = CliRunner().invoke(cli, ["run", "dcgan", "--set", assignment, "--dry-run"])
        assert result.exit_code == 2 and "conflicts with the variant named on the command line" in result.output
    assert CliRunner().invoke(cli, ["run", "dcgan", "--set", "variant.name=dcgan", "--dry-run"]).exit_code == 0
