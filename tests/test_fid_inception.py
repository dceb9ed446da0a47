"""The standard FID extractor against the reference implementation, the weights converter, and the
real-statistics cache (issue 17).

The reference is torch-fidelity 0.4.0, installed by the test command with ``--no-deps`` (it needs
torchvision, which does not load beside the CPU torch wheel, so torch and torchvision stay as they
are): its feature extractor module and its FID functions are run from the installed package's files
without executing the package's ``__init__`` (which imports its torchvision-based datasets). Both
pipelines get the same random weights (no download: the real weights are never needed) and the
same uint8 images.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gancore.cli import cli
from gancore.metrics import stats
from gancore.metrics.extractors import FIDInception, get_extractor
from gancore.metrics.fid_inception import FIDInceptionV3, tf1_bilinear_resize


def reference_dir() -> Path | None:
    spec = importlib.util.find_spec("torch_fidelity")  # finds the package without running its __init__
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


@pytest.fixture(scope="module")
def reference():
    """torch-fidelity's extractor module and FID functions, run from its installed files."""
    where = reference_dir()
    if where is None:
        if os.environ.get("CI"):
            pytest.fail("torch-fidelity is not installed: the test command installs it with --no-deps")
        pytest.skip("torch-fidelity not installed (pip install --no-deps torch-fidelity==0.4.0)")
    saved = {k: v for k, v in sys.modules.items() if k == "torch_fidelity" or k.startswith("torch_fidelity.")}
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(where)]
    sys.modules["torch_fidelity"] = package
    try:
        module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        # metric_fid.py imports the package's torchvision-based utils: take its two functions' source alone
        tree = ast.parse((where / "metric_fid.py").read_text())
        wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef)
                  and n.name in ("fid_features_to_statistics", "fid_statistics_to_metric")]
        namespace = {"np": np, "torch": torch, "KEY_METRIC_FID": "frechet_inception_distance",
                     "vprint": lambda verbose, message: None}
        exec(compile(ast.Module(body=wanted, type_ignores=[]), str(where / "metric_fid.py"), "exec"), namespace)
        yield types.SimpleNamespace(module=module, fid_stats=namespace["fid_features_to_statistics"],
                                    fid=namespace["fid_statistics_to_metric"])
    finally:
        for k in [k for k in sys.modules if k == "torch_fidelity" or k.startswith("torch_fidelity.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """He-scaled convolutions and unit batch norms: activations stay of order one through all 94 layers."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in FIDInceptionV3().state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("conv.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif key.endswith("bn.weight"):
            state[key] = 0.8 + 0.4 * torch.rand(value.shape, generator=g)
        elif key.endswith("bn.bias"):
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
        elif key.endswith("running_mean"):
            state[key] = 0.05 * torch.randn(value.shape, generator=g)
        elif key.endswith("running_var"):
            state[key] = 0.9 + 0.2 * torch.rand(value.shape, generator=g)
        elif key == "fc.weight":
            state[key] = torch.randn(value.shape, generator=g) / 2048 ** 0.5
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
    return state


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random weights in the published file's format (a state dict torch.save'd in the legacy layout, as
    torch < 1.6 wrote the published file), converted by the CLI."""
    folder = tmp_path_factory.mktemp("weights")
    state = random_state()
    pth = folder / "random_inception.pth"
    torch.save(state, pth, _use_new_zipfile_serialization=False)
    out = folder / "random_inception.safetensors"
    result = CliRunner().invoke(cli, ["weights", "convert", str(pth), "--out", str(out), "--sha256", sha256(pth)])
    assert result.exit_code == 0, result.output
    assert f"sha256 {sha256(pth)}" in result.output
    return types.SimpleNamespace(state=state, pth=pth, path=out)


def image_sets(n: int = 10, side: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 RGB sets with different statistics (smooth blobs vs noise), [N, 3, side, side]."""
    g = torch.Generator().manual_seed(3)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    centres = torch.rand(n, 3, 2, generator=g) * 1.2 - 0.6
    blobs = torch.exp(-((xx - centres[..., 0, None, None]) ** 2 + (yy - centres[..., 1, None, None]) ** 2) * 6)
    a = (blobs * 255).round().to(torch.uint8)
    b = torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)
    return a, b


def as_float(u: torch.Tensor) -> torch.Tensor:
    return u.float() / 127.5 - 1


def test_features_and_fid_equal_torch_fidelity_on_the_same_images_and_weights(reference, weights, monkeypatch):
    monkeypatch.setattr(reference.module, "load_state_dict_from_url", lambda *a, **k: dict(weights.state))
    ref = reference.module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"])
    ours = get_extractor("fid-inception", str(weights.path))
    a, b = image_sets()
    with torch.no_grad():
        ref_a, ref_logits = ref(a)
        ref_b, _ = ref(b)
    ours_a, ours_probs = ours.run_batch(as_float(a))
    ours_b, _ = ours.run_batch(as_float(b))
    scale = ref_a.abs().max()
    assert scale > 1e-3  # the random network does not collapse
    assert float((ours_a - ref_a).abs().max() / scale) < 1e-4
    assert float((ours_b - ref_b).abs().max() / ref_b.abs().max()) < 1e-4
    assert torch.allclose(ours_probs, torch.softmax(ref_logits.double(), 1).float(), atol=1e-5)

    ref_fid = reference.fid(reference.fid_stats(ref_a), reference.fid_stats(ref_b), False)["frechet_inception_distance"]
    ours_fid = stats.frechet_distance(*stats.gaussian_stats(ours_a), *stats.gaussian_stats(ours_b))
    assert ref_fid > 0
    assert abs(ours_fid - ref_fid) / ref_fid < 1e-4, (ours_fid, ref_fid)


def test_gray_images_are_repeated_to_rgb_and_float_images_are_quantised_first(weights):
    ours = get_extractor("fid-inception", str(weights.path))
    a, _ = image_sets(4)
    gray = a[:, :1]
    f_gray, _ = ours.run_batch(as_float(gray))
    f_rgb, _ = ours.run_batch(as_float(gray.expand(-1, 3, -1, -1)))
    assert torch.equal(f_gray, f_rgb)
    nudged = as_float(a) + 0.3 / 127.5  # below half a level: the same uint8 image
    assert torch.equal(ours.run_batch(nudged)[0], ours.run_batch(as_float(a))[0])
    raw = get_extractor("fid-inception", str(weights.path), quantize=False)
    assert not torch.equal(raw.run_batch(nudged)[0], ours.run_batch(as_float(a))[0])
    assert ours.provenance(32)["quantization"].startswith("uint8") and raw.provenance(32)["quantization"] == "none"
    assert ours.provenance(32)["resize_filter"] == "tf1-bilinear"


def test_the_tf1_resize_equals_torch_fidelitys(reference):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1)) * 255
    for size in (299, 8):
        ref = interpolate_bilinear_2d_like_tensorflow1x(x, size=(size, size), align_corners=False)
        assert torch.equal(tf1_bilinear_resize(x, size), ref)


class Malicious:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    for name, write in [("legacy.pth", lambda p: p.write_bytes(pickle.dumps({"fc.weight": Malicious(marker)}))),
                        ("zipped.pth", lambda p: torch.save({"fc.weight": Malicious(marker)}, p))]:
        path = tmp_path / name
        write(path)
        assert not marker.exists()  # writing it ran nothing either
        result = CliRunner().invoke(cli, ["weights", "convert", str(path), "--out", str(tmp_path / "w.safetensors"),
                                          "--sha256", sha256(path)])
        assert result.exit_code == 2, result.output
        assert "refused" in result.output and len(result.output.strip().splitlines()) == 1
        assert not marker.exists()
        assert not (tmp_path / "w.safetensors").exists()


def test_the_converter_checks_the_digest_the_tensors_and_the_output_name(tmp_path, weights):
    runner = CliRunner()
    out = str(tmp_path / "w.safetensors")
    result = runner.invoke(cli, ["weights", "convert", str(weights.pth), "--out", out])  # the published digest
    assert result.exit_code == 2 and "6726825d" in result.output and "not the standard FID weights" in result.output
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in weights.state.items() if not k.startswith("fc.")}, partial)
    result = runner.invoke(cli, ["weights", "convert", str(partial), "--out", out, "--sha256", sha256(partial)])
    assert result.exit_code == 2 and "missing ['fc.bias', 'fc.weight']" in result.output
    result = runner.invoke(cli, ["weights", "convert", str(weights.pth), "--out", str(tmp_path / "w.bin"),
                                 "--sha256", sha256(weights.pth)[:8]])
    assert result.exit_code == 2 and "must end in .safetensors" in result.output
    result = runner.invoke(cli, ["weights", "convert", str(tmp_path / "absent.pth"), "--out", out])
    assert result.exit_code == 2 and "pt_inception-2015-12-05-6726825d.pth" in result.output
    result = runner.invoke(cli, ["weights", "convert", str(weights.pth), "--out", out, "--sha256", "xyz"])
    assert result.exit_code == 2 and "--sha256" in result.output
    assert not Path(out).exists()


def test_the_extractor_refuses_files_it_did_not_convert(tmp_path, weights):
    from safetensors.torch import save_file

    from gancore.errors import ConfigError

    foreign = tmp_path / "foreign.safetensors"
    save_file({k: v for k, v in weights.state.items() if not k.endswith("num_batches_tracked")}, str(foreign))
    with pytest.raises(ConfigError, match="not made by `gancore weights convert`"):
        FIDInception(str(foreign))
    with pytest.raises(ConfigError, match="gancore weights convert"):
        FIDInception(None)
    (tmp_path / "torn.safetensors").write_bytes(weights.path.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="not a safetensors file"):
        FIDInception(str(tmp_path / "torn.safetensors"))


# -- end to end: gancore eval with fid-inception, the real statistics cache ---------------------------


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A 2-step DCGAN run on an image folder of 24 PNGs (16x16 RGB)."""
    root = tmp_path_factory.mktemp("folder")
    images = root / "images"
    images.mkdir()
    a, _ = image_sets(24, 16)
    for i, img in enumerate(a):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(images / f"{i:03d}.png")
    run = root / "run"
    result = CliRunner().invoke(cli, [
        "run", "dcgan", "--out", str(run), "--set", "data.name=image-folder", "--set", f"data.path={images}",
        "--set", "data.image_size=16", "--set", "train.steps=2", "--set", "train.batch_size=8",
        "--set", "log.progress=false", "--set", "log.sample_every=0"])
    assert result.exit_code == 0, result.output
    return types.SimpleNamespace(run=run, images=images)


def eval_fid(run: Path, weights: Path, *extra: str) -> dict:
    result = CliRunner().invoke(cli, ["eval", str(run), "--metric", "fid", "--n", "16",
                                      "--set", "eval.metrics.fid.extractor=fid-inception",
                                      "--set", f"eval.metrics.fid.weights={weights}",
                                      *extra])
    assert result.exit_code == 0, result.output
    return json.loads((run / "eval" / "fid_step_0000002.json").read_text())


def test_gancore_eval_with_fid_inception_caches_the_real_statistics_safely(folder_run, weights, tmp_path):
    first = eval_fid(folder_run.run, weights.path)
    prov = first["provenance"]
    assert prov["extractor"] == "fid-inception-2015-12-05" and prov["n_samples"] == 16 and prov["n_real"] == 24
    assert prov["resize_filter"] == "tf1-bilinear" and prov["quantization"].startswith("uint8")
    assert prov["real_stats_reused"] is False and Path(prov["real_stats_cache"]).is_file()
    key = prov["real_stats_key"]  # the cache's key, in the provenance
    assert key["digest"] in prov["real_stats_cache"] and key["split"] == "all" and key["n"] == 24
    assert key["extractor_sha256"] == prov["extractor_sha256"] and key["quantization"] == prov["quantization"]
    assert key["resize_filter"] == "tf1-bilinear" and key["shape"] == [3, 16, 16]
    assert first["values"]["fid"] > 0

    second = eval_fid(folder_run.run, weights.path)
    assert second["provenance"]["real_stats_reused"] is True
    assert second["values"]["fid"] == first["values"]["fid"]  # the same statistics, read back

    # a changed dataset never reuses the cache: one pixel of one image
    path = folder_run.images / "005.png"
    img = np.array(Image.open(path))
    img[0, 0, 0] ^= 1
    Image.fromarray(img).save(path)
    changed = eval_fid(folder_run.run, weights.path)
    assert changed["provenance"]["real_stats_reused"] is False
    assert changed["provenance"]["real_content_sha256"] != first["provenance"]["real_content_sha256"]
    assert changed["provenance"]["real_stats_cache"] != prov["real_stats_cache"]

    # another extractor's weights never reuse it either
    other = tmp_path / "other.pth"
    torch.save(random_state(seed=1), other)
    other_st = tmp_path / "other.safetensors"
    assert CliRunner().invoke(cli, ["weights", "convert", str(other), "--out", str(other_st),
                                    "--sha256", sha256(other)]).exit_code == 0
    swapped = eval_fid(folder_run.run, other_st)
    assert swapped["provenance"]["real_stats_reused"] is False
    assert swapped["provenance"]["extractor_sha256"] != changed["provenance"]["extractor_sha256"]

    # nor does another quantisation
    unquantised = eval_fid(folder_run.run, weights.path, "--set", "eval.metrics.fid.quantize=false")
    assert unquantised["provenance"]["real_stats_reused"] is False

    # a damaged cache file is computed again, and said so
    cache = Path(changed["provenance"]["real_stats_cache"])
    cache.write_bytes(cache.read_bytes()[:200])
    result = CliRunner().invoke(cli, ["eval", str(folder_run.run), "--metric", "fid", "--n", "16",
                                      "--set", "eval.metrics.fid.extractor=fid-inception",
                                      "--set", f"eval.metrics.fid.weights={weights.path}"])
    assert result.exit_code == 0 and "unusable" in result.output
    again = json.loads((folder_run.run / "eval" / "fid_step_0000002.json").read_text())
    assert again["values"]["fid"] == pytest.approx(changed["values"]["fid"], rel=1e-9)


def test_a_tampered_cache_key_is_not_reused(folder_run, weights):
    from safetensors import safe_open
    from safetensors.torch import save_file

    first = eval_fid(folder_run.run, weights.path)
    cache = Path(first["provenance"]["real_stats_cache"])
    with safe_open(str(cache), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        key = json.loads(f.metadata()["key"])
    key["n"] = 999  # a file whose key is another's, under this key's name
    save_file(tensors, str(cache), metadata={"key": json.dumps(key, sort_keys=True)})
    assert eval_fid(folder_run.run, weights.path)["provenance"]["real_stats_reused"] is False


def test_gancore_eval_equals_torch_fidelity_on_the_runs_own_samples(reference, folder_run, weights, monkeypatch):
    """The whole pipeline: `gancore eval`'s FID equals torch-fidelity's on the same samples (drawn with
    the evaluation's seed, saved as uint8 the way a user would save them) and the same real PNGs."""
    from gancore.app import load_plugins
    from gancore.inference import load_model
    from gancore.kernel.drawing import draw_samples
    from gancore.metrics.extractors import to_uint8

    ours = eval_fid(folder_run.run, weights.path)["values"]["fid"]
    built, _ = load_model(load_plugins(), folder_run.run)
    samples = to_uint8(draw_samples(built, 16, rng=torch.Generator().manual_seed(0)))
    real = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1)
                        for p in sorted(folder_run.images.glob("*.png"))])
    monkeypatch.setattr(reference.module, "load_state_dict_from_url", lambda *a, **k: dict(weights.state))
    ref = reference.module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    with torch.no_grad():
        (f_fake,), (f_real,) = ref(samples), ref(real)
    stats_fake, stats_real = reference.fid_stats(f_fake), reference.fid_stats(f_real)
    theirs = reference.fid(stats_fake, stats_real, False)["frechet_inception_distance"]
    assert abs(ours - theirs) / theirs < 1e-4, (ours, theirs)


def test_nothing_unpickles():
    """Checkpoints, caches and converted weights are safetensors/JSON, and the published .pth is read as
    data (gancore.metrics.pth_reader): no torch.load anywhere in gancore and its plugins, nothing imports pickle."""
    root = Path(__file__).resolve().parents[1]
    loads, pickles = [], []
    for path in [*(root / "gancore").rglob("*.py"), *(root / "plugins").glob("*/gancore_*/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                loads.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "cPickle", "dill") for n in names):
                    pickles.append(path.relative_to(root).as_posix())
    assert loads == []
    assert pickles == []
