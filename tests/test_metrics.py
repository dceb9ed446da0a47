"""Metrics: closed forms, unbiasedness, ordering on real vs noise vs collapsed samples,
provenance, eval during training, gancore eval on every kind of run, and the report page."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.data.digits import Digits
from gancore.metrics.extractors import DigitClassifier, get_extractor
from gancore.metrics.stats import (
    frechet_distance,
    frechet_of_features,
    inception_score,
    kernel_inception_distance,
    polynomial_mmd2,
)
from gancore.testing import SMALL, make_config, train, weights

# -- statistics -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(dim=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_frechet_distance_closed_form_for_diagonal_gaussians(dim, seed):
    """For diagonal covariances FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2."""
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    a, b = rng.uniform(0.1, 4, dim), rng.uniform(0.1, 4, dim)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_frechet_distance_closed_form_for_full_covariances():
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = m1 @ m1.T + np.eye(4), m2 @ m2.T + np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    r1 = linalg.sqrtm(s1).real  # Tr (S1 S2)^1/2 = Tr (S1^1/2 S2 S1^1/2)^1/2
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(r1 @ s2 @ r1).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)
    # fitted to samples, the estimate converges to the closed form
    x = rng.multivariate_normal(mu1, s1, 200_000)
    y = rng.multivariate_normal(mu2, s2, 200_000)
    assert frechet_of_features(x, y) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_survives_singular_covariances():
    x = np.random.default_rng(0).normal(size=(50, 8))
    x[:, 3] = 0  # a dead unit
    assert np.isfinite(frechet_of_features(x, x + 0.1))


def test_kid_is_unbiased_on_samples_of_one_distribution():
    rng = np.random.default_rng(1)
    values = [polynomial_mmd2(rng.normal(size=(60, 5)), rng.normal(size=(60, 5))) for _ in range(300)]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(len(values))  # mean 0, unlike the biased form
    biased = np.mean([((lambda x, y: ((x @ x.T / 5 + 1) ** 3).mean() + ((y @ y.T / 5 + 1) ** 3).mean()
                        - 2 * ((x @ y.T / 5 + 1) ** 3).mean())(rng.normal(size=(60, 5)), rng.normal(size=(60, 5))))
                      for _ in range(100)])
    assert biased > 10 * abs(np.mean(values))
    same = rng.normal(size=(80, 5))
    mean, _ = kernel_inception_distance(same, same.copy(), subsets=20, subset_size=40)
    shifted, _ = kernel_inception_distance(same, same + 1.0, subsets=20, subset_size=40)
    assert abs(mean) < 0.05 * shifted  # the same set: about zero, far below a shifted copy
    # FID between independent samples of one distribution is biased upwards; KID is not
    fids = [frechet_of_features(rng.normal(size=(60, 5)), rng.normal(size=(60, 5))) for _ in range(50)]
    assert min(fids) > 0


def test_inception_score_bounds():
    confident = np.eye(10)[np.arange(1000) % 10]
    assert inception_score(confident, 10)[0] == pytest.approx(10, rel=1e-6)  # every class, all certain
    assert inception_score(np.eye(10)[np.zeros(1000, int)], 10)[0] == pytest.approx(1, rel=1e-6)  # collapsed
    assert inception_score(np.full((1000, 10), 0.1), 10)[0] == pytest.approx(1, rel=1e-6)  # uncertain


# -- the digit extractor ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return get_extractor("digits")


def test_digit_extractor_is_cached_hashed_and_accurate(digits):
    assert digits.path.is_file() and digits.path.parent.parent == Path(__import__("os").environ["GANCORE_CACHE"])
    assert DigitClassifier.recipe_hash() in digits.path.name
    test = Digits(Digits.Config(split="test")).load()
    _, probs = digits.run(test.x)
    assert float((probs.argmax(1) == test.y).double().mean()) > 0.93
    again = DigitClassifier(digits.path)  # loaded from the cache, not retrained
    assert again.sha256 == digits.sha256


def test_metrics_order_real_noise_and_collapsed_samples(digits):
    train = Digits(Digits.Config(split="train")).load()
    test = Digits(Digits.Config(split="test")).load()
    noise = torch.rand(len(test.x), 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    collapsed = test.x[:1].expand(len(test.x), -1, -1, -1).clone()
    feats = {name: digits.run(x) for name, x in
             {"train": train.x, "real": test.x, "noise": noise, "collapsed": collapsed}.items()}
    fid = {k: frechet_of_features(feats[k][0], feats["train"][0]) for k in ("real", "noise", "collapsed")}
    kid = {k: kernel_inception_distance(feats[k][0], feats["train"][0], subsets=3, subset_size=300)[0]
           for k in ("real", "noise", "collapsed")}
    score = {k: inception_score(feats[k][1], 5)[0] for k in ("real", "noise", "collapsed")}
    assert fid["real"] < fid["collapsed"] and fid["real"] < fid["noise"]
    assert fid["real"] < 0.1 * min(fid["collapsed"], fid["noise"])
    assert kid["real"] < kid["collapsed"] and kid["real"] < kid["noise"]
    assert score["real"] > 8 and score["collapsed"] < 1.5 and score["real"] > score["noise"]


def test_inception_needs_a_local_safetensors_file(tmp_path):
    runner = CliRunner()
    from gancore.errors import ConfigError

    with pytest.raises(ConfigError, match="never downloads"):
        get_extractor("inception")
    (tmp_path / "inception.pt").write_bytes(b"not a pickle we would load")
    with pytest.raises(ConfigError, match="not a .safetensors file"):
        get_extractor("inception", str(tmp_path / "inception.pt"))
    with pytest.raises(ConfigError, match="does not exist"):
        get_extractor("inception", str(tmp_path / "missing.safetensors"))
    del runner


# -- gancore eval on runs of every kind ---------------------------------------------------------


TINY_IMAGES = {**SMALL, "data.image_size": 32, "train.steps": 4, "log.checkpoint_every": 0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    host = load_plugins()
    root = tmp_path_factory.mktemp("evalruns")
    specs = {
        "dcgan": ("dcgan", {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8}),
        "cgan": ("cgan", {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8}),
        "wgan": ("wgan", {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8,
                          "train.steps": 2}),
        "siamese-generate": ("siamese", {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8,
                                         "variant.vec_len": 4}),
        "mixture": ("dcgan", {**{k: v for k, v in SMALL.items() if k != "data.image_size"},
                              "data.name": "gaussian-grid", "variant.mlp_hidden": 16}),
        "cyclegan": ("cyclegan", {**TINY_IMAGES, "variant.generator_width": 4, "variant.critic_width": 4,
                                  "variant.residual_blocks": 1, "train.batch_size": 4}),
        "siamese": ("siamese", {**TINY_IMAGES, "variant.mode": "translate", "variant.generator_width": 4,
                                "variant.critic_width": 4, "variant.vec_len": 4, "train.batch_size": 4}),
    }
    for name, (variant, over) in specs.items():
        train(host, make_config(host, variant, over), root / name)
    return root


def _eval(run: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["eval", str(run), "--n", "200", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("run, metrics, values", [
    ("dcgan", ["fid", "kid", "inception-score"], ["fid", "kid", "inception_score"]),
    ("dcgan", ["precision-recall", "density-coverage"], ["precision", "recall", "density", "coverage"]),
    ("cyclegan", ["precision-recall"], ["precision", "recall"]),
    ("wgan", ["fid", "inception-score"], ["fid", "inception_score"]),
    ("siamese-generate", ["fid", "kid"], ["fid", "kid"]),
    ("cgan", ["label-accuracy", "tstr", "fid"], ["label_accuracy", "tstr", "trtr", "fid"]),
    ("mixture", ["modes"], ["modes", "high_quality"]),
    ("cyclegan", ["preservation", "reconstruction", "fid"], ["preservation", "reconstruction_l1_a", "fid"]),
    ("siamese", ["preservation", "fid"], ["preservation", "fid"]),
])
def test_gancore_eval_on_every_kind_of_run_writes_results_with_provenance(runs, run, metrics, values):
    code, output = _eval(runs / run, *[a for m in metrics for a in ("--metric", m)])
    assert code == 0, output
    found = {}
    for metric in metrics:
        (path,) = (runs / run / "eval").glob(f"{metric}_step_*.json")
        result = json.loads(path.read_text())
        found.update(result["values"])
        prov = result["provenance"]
        assert {"metric", "step", "dataset", "data_settings", "gancore", "torch", "checkpoint", "seed"} <= set(prov)
        assert "n_samples" in prov
        if metric in ("fid", "kid", "inception-score", "label-accuracy", "precision-recall", "density-coverage"):
            assert prov["extractor"] == "digits-cnn-v1" and len(prov["extractor_sha256"]) == 64
            assert prov["input_image_size"] == 32 and prov["resize_filter"] == "none"
    for key in values:
        assert np.isfinite(found[key]), key
        assert key in output


def test_default_metrics_follow_the_task_and_skip_what_cannot_run(runs):
    code, output = _eval(runs / "siamese")
    assert code == 0, output
    assert "skipped reconstruction" in output and "preservation" in output  # one-way translator
    code, output = _eval(runs / "mixture")
    assert code == 0 and "modes" in output


def test_eval_errors_are_one_line(runs, tmp_path):
    for args, match in ((["--metric", "modes"], "applies to vector runs"),
                        (["--metric", "fid", "--set", "eval.metrics.fid.nope=1"], "eval.metrics.fid.nope: unknown key"),
                        (["--metric", "fid", "--set", "eval.metrics.kid.subsets=2"],
                         "or the name of one item (it has fid)"),
                        (["--metric", "fid", "--set", "fid.n=2"],
                         "takes the run config's keys, eval.metrics.<metric>.<key> "
                         "(e.g. --set eval.metrics.fid.n=...)"),
                        (["--metric", "fidd"], "did you mean 'fid'")):
        code, output = _eval(runs / "dcgan", *args)
        assert code == 2 and match in output and "Traceback" not in output, (args, output)
    code, output = _eval(tmp_path / "nothing")
    assert code == 2 and "Traceback" not in output


def test_eval_during_training_logs_metrics_and_leaves_training_unchanged(tmp_path):
    host = load_plugins()
    over = {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8}
    plain = train(host, make_config(host, "dcgan", over), tmp_path / "plain")
    evald = train(host, make_config(host, "dcgan", {**over, "eval.every": 2, "eval.n": 100,
                                                     "eval.metrics": [{"name": "fid"}, {"name": "kid", "subsets": 2}]}),
                  tmp_path / "evald")
    a, b = weights(plain), weights(evald)
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights: evaluation touches no training RNG
    records = [json.loads(line) for line in (tmp_path / "evald" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/fid/fid" in r]
    assert [r["step"] for r in evals] == [2, 4] and all("eval/kid/kid" in r for r in evals)
    assert evals[0]["eval/fid/fid"] != evals[1]["eval/fid/fid"]  # fresh samples from the new weights
    assert sorted(p.name for p in (tmp_path / "evald" / "eval").iterdir()) == [
        "fid_step_0000002.json", "fid_step_0000004.json", "kid_step_0000002.json", "kid_step_0000004.json"]


def test_eval_metrics_are_validated_with_the_config():
    from gancore.config import build_raw, resolve
    from gancore.errors import ConfigError

    host = load_plugins()
    with pytest.raises(ConfigError, match=r"eval.metrics.0.subsets: Input should be greater than or equal to 1"):
        resolve(host, build_raw("dcgan"), ['eval.metrics=[{"name": "kid", "subsets": 0}]'])
    cfg = resolve(host, build_raw("dcgan"), ['eval.metrics=[{"name": "kid"}]', "eval.every=10"])
    again = resolve(host, json.loads(json.dumps(cfg.to_dict())))
    assert again.to_dict() == cfg.to_dict() and again.to_dict()["eval"]["metrics"][0]["subset_size"] == 1000


# -- the report ---------------------------------------------------------------------------------


class Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def test_report_is_self_contained_and_has_every_section(runs, tmp_path):
    run = runs / "dcgan"
    _eval(run, "--metric", "fid")
    result = CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    parser = Resources()
    parser.feed(page)
    assert parser.refs and all(r.startswith("data:image/png;base64,") or r.startswith("#") for r in parser.refs)
    assert "script" not in parser.tags and "link" not in parser.tags and "@import" not in page
    for section in ("losses", "metrics", "evaluations", "samples", "checkpoints", "config"):
        assert f"id='{section}'" in page
    assert parser.tags.count("svg") >= 2 and "polyline" in page  # critic and generator curves
    assert "digits-cnn-v1" in page and "step_0000004.safetensors" in page
    assert json.loads((run / "config.json").read_text())["variant"]["name"] in page


@pytest.mark.parametrize("run", ["dcgan", "wgan", "cgan", "mixture", "cyclegan", "siamese", "siamese-generate"])
def test_report_works_on_every_kind_of_run(runs, run, tmp_path):
    result = CliRunner().invoke(cli, ["report", str(runs / run), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "<polyline" in page and "data:image/png;base64," in page


def test_report_errors(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no such run directory" in result.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "not valid JSON" in result.output and "Traceback" not in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser installed (.ci/run installs Debian's chromium)")
def test_report_renders_in_a_headless_browser(runs, tmp_path):
    run = runs / "cyclegan"
    CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "r.html")])
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           (tmp_path / "r.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "Loss curves" in dom and "Samples over time" in dom and "<svg" in dom and "data:image/png" in dom


# -- TensorBoard ----------------------------------------------------------------------------------


def test_tensorboard_logging_writes_scalars_and_grids(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    host = load_plugins()
    over = {**TINY_IMAGES, "variant.generator_width": 8, "variant.critic_width": 8, "log.tensorboard": True,
            "log.sample_every": 2, "eval.every": 4, "eval.n": 50}
    train(host, make_config(host, "dcgan", over), tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"critic/adv", "generator/adv", "it_per_s", "eval/fid/fid"} <= scalars
    assert [e.step for e in acc.Scalars("critic/adv")] == [1, 2, 3, 4]
    assert "samples" in acc.Tags()["images"]


def test_tensorboard_without_the_package_is_a_one_line_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "run"), "--set", "log.tensorboard=true"])
    assert result.exit_code == 2 and "log.tensorboard: needs the tensorboard package" in result.output
    assert "Traceback" not in result.output


def test_the_hook_reference_metric_example_runs(runs):
    """docs/hooks.md's metric example, registered as a plugin, evaluates a real run."""
    import re
    import types

    from gancore import Metric, hookimpl
    from gancore.evaluation import evaluate

    text = (Path(__file__).parent.parent / "docs" / "hooks.md").read_text()
    section = text.split("### `gancore_register_metrics()`", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("brightness_plugin")
    module.__dict__.update(Metric=Metric, hookimpl=hookimpl)
    exec(code, module.__dict__)
    host = load_plugins(extra=[("brightness", module)])
    results, _ = evaluate(host, runs / "dcgan", ["brightness"], [], n=50, echo=lambda m: None)
    values, prov = results[0]["values"], results[0]["provenance"]
    assert set(values) == {"fake", "real"} and prov["n_samples"] == 50 and prov["real_split"] == "test"
