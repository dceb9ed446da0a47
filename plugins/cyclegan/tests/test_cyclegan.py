"""CycleGAN: four networks through the kernel, the pool, unpaired data, translate both ways."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gancore_cyclegan.pool import HistoryPool
from PIL import Image
from safetensors.torch import load_file

from gancore.app import load_plugins
from gancore.cli import cli
from gancore.config import build_raw, resolve
from gancore.errors import ConfigError
from gancore.inference import load_model
from gancore.testing import SMALL, make_config, train, weights
from gancore.translation.sources import DigitsPair, Unpaired

TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4, "variant.residual_blocks": 1,
        "train.batch_size": 4, "log.samples": 3}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    host = load_plugins()
    out = tmp_path_factory.mktemp("cyclegan") / "run"
    train(host, make_config(host, "cyclegan", TINY), out)
    return out


def test_defaults_are_the_papers():
    cfg = resolve(load_plugins(), build_raw("cyclegan"))
    assert cfg.data_cls.name == "digits-pair" and cfg.loss_cls.name == "least-squares"
    assert cfg.variant.identity_weight == 0.5 and cfg.variant.pool_size == 50
    assert cfg.variant.cycle_weight == 2 and cfg.variant.generator_downsampling == 0  # digits defaults
    for opt in (cfg.optim.generator, cfg.optim.critic):
        assert (opt.name, opt.lr, opt.betas, opt.schedule, opt.decay_start) == (
            "adam", 2e-4, (0.5, 0.999), "linear", 0.5)


def test_four_networks_two_optimizers_and_named_terms(tmp_path):
    host = load_plugins()
    trainer = train(host, make_config(host, "cyclegan", TINY), tmp_path / "run")
    nets = trainer.built.nets
    assert set(nets.generator) == {"a2b", "b2a"} and {"a", "b"} <= set(nets.critic)
    g_params = {id(p) for p in nets.generator.parameters()}
    assert {id(p) for group in trainer.state.optimizers["generator"].param_groups for p in group["params"]} == g_params
    import json

    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"critic/adv_a", "critic/adv_b", "generator/adv_a2b", "generator/adv_b2a", "generator/cycle",
            "generator/identity", "generator/total"} <= set(record)


def test_checkpoint_resume_restores_all_four_networks_both_optimizers_and_pools(tmp_path):
    host = load_plugins()
    over = {**TINY, "log.checkpoint_every": 2}
    straight = train(host, make_config(host, "cyclegan", {**over, "train.steps": 4}), tmp_path / "a")
    train(host, make_config(host, "cyclegan", {**over, "train.steps": 2}), tmp_path / "b")
    resumed = train(host, make_config(host, "cyclegan", {**over, "train.steps": 4}), tmp_path / "b", resume=True)
    a, b = weights(straight), weights(resumed)
    assert any(k.startswith("state_pool_a.") for k in a) and not any(".pool_" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("generator", "critic"):
        sa = straight.state.optimizers[name].state_dict()["state"]
        sb = resumed.state.optimizers[name].state_dict()["state"]
        assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_penalties_reach_both_critics_and_are_logged_apart(tmp_path):
    import json

    host = load_plugins()
    cfg = make_config(host, "cyclegan", {**TINY, "regularizers": [{"name": "r1", "weight": 1.0}]})
    train(host, cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"critic/r1_a", "critic/r1_b"} <= set(record) and "critic/r1" not in record


def test_history_pool_fills_then_mixes_old_and_new():
    torch.manual_seed(0)
    pool = HistoryPool(4, (1, 2, 2))
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    assert torch.equal(pool(first), first) and int(pool.count) == 4
    new = (100 + torch.arange(64.0)).view(64, 1, 1, 1).expand(64, 1, 2, 2).clone()
    out = pool(new)
    swapped = (out[:, 0, 0, 0] != new[:, 0, 0, 0]).sum().item()
    assert 15 < swapped < 50, swapped  # about half are swapped for stored images
    returned_old = out[:, 0, 0, 0][out[:, 0, 0, 0] != new[:, 0, 0, 0]]
    assert all(v in {0.0, 1.0, 2.0, 3.0} or (v >= 100 and v < 164) for v in returned_old.tolist())
    assert (pool.images[:, 0, 0, 0] >= 100).any()  # the pool now holds newer images
    assert torch.equal(HistoryPool(0, (1, 2, 2))(new), new)


def test_preview_rows_show_input_translation_reconstruction(run_dir):
    w, h = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1]).size
    assert abs(h / w - 2.0) < 0.2  # 6 rows of 3


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_translate_folder_image_and_tensors(run_dir, tmp_path, direction):
    folder = tmp_path / "in"
    folder.mkdir()
    x = DigitsPair(DigitsPair.Config(image_size=16)).load().x[:3]
    for i in range(3):
        Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).astype(np.uint8)).save(folder / f"img{i}.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["translate", str(run_dir), "--input", str(folder), "--out", str(out),
                                      "--direction", direction])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    assert Image.open(out / "img0.png").size == (16, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    result = CliRunner().invoke(cli, ["translate", str(run_dir), "--input", str(tmp_path / "x.npy"),
                                      "--out", str(tmp_path / "y.safetensors"), "--direction", direction])
    assert result.exit_code == 0, result.output
    y = load_file(str(tmp_path / "y.safetensors"))["samples"]
    assert y.shape == (3, 1, 16, 16) and y.abs().max() <= 1
    model, _ = load_model(load_plugins(), run_dir)
    gen = model.nets.generator[direction].eval()
    with torch.no_grad():
        assert torch.allclose(y, gen(x), atol=1e-6)


def test_translate_errors(run_dir, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 16, 16), np.float32))
    result = CliRunner().invoke(cli, ["translate", str(run_dir), "--input", str(tmp_path / "bad.npy"),
                                      "--out", str(tmp_path / "o.npy")])
    assert result.exit_code == 2 and "expected images of shape [N, 1, 16, 16], got [2, 3, 16, 16]" in result.output
    result = CliRunner().invoke(cli, ["translate", str(run_dir), "--input", str(tmp_path / "nothing"),
                                      "--out", str(tmp_path / "o.npy")])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["sample", str(run_dir), "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and "use `gancore translate`" in result.output


def test_translate_refuses_noise_variants(tmp_path):
    host = load_plugins()
    train(host, make_config(host, "dcgan", {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4}),
          tmp_path / "run")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 16, 16), np.float32))
    result = CliRunner().invoke(cli, ["translate", str(tmp_path / "run"), "--input", str(tmp_path / "x.npy"),
                                      "--out", str(tmp_path / "y.npy")])
    assert result.exit_code == 2 and "does not translate images" in result.output


def test_needs_two_domains(tmp_path):
    host = load_plugins()
    cfg = make_config(host, "cyclegan", {**TINY, "data.name": "digits"})
    with pytest.raises(ConfigError, match="cyclegan needs two unpaired image domains"):
        train(host, cfg, tmp_path / "run")


# -- unpaired data ------------------------------------------------------------------------------


def _save(path, array, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def test_unpaired_folders_with_mismatched_sizes_and_modes(tmp_path):
    rng = np.random.default_rng(0)
    _save(tmp_path / "trainA" / "a.png", rng.integers(0, 255, (40, 30, 3), dtype=np.uint8), "RGB")
    _save(tmp_path / "trainA" / "b.jpg", rng.integers(0, 255, (20, 20), dtype=np.uint8), "L")
    _save(tmp_path / "trainB" / "c.png", rng.integers(0, 255, (64, 64), dtype=np.uint8), "L")
    data = Unpaired(Unpaired.Config(path=str(tmp_path), image_size=16)).load()
    assert data.x.shape == (2, 3, 16, 16) and data.x_b.shape == (1, 3, 16, 16)
    assert data.spec.domains == 2
    gray = Unpaired(Unpaired.Config(path=str(tmp_path), image_size=8, channels=1)).load()
    assert gray.x.shape == (2, 1, 8, 8)


def test_unpaired_errors(tmp_path):
    with pytest.raises(ConfigError, match="trainA is missing"):
        Unpaired(Unpaired.Config(path=str(tmp_path))).load()
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(ConfigError, match="no images found in .*trainA"):
        Unpaired(Unpaired.Config(path=str(tmp_path))).load()


def test_flips_are_drawn_per_image_and_resume(tmp_path):
    from gancore.data import TensorData
    from gancore.kernel.sampler import BatchSampler

    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(8, 1, 1, 1)
    sampler = BatchSampler(TensorData(x=x, x_b=x.clone(), flip=True), 8, torch.device("cpu"), 0)
    batch = sampler.next()
    flipped = (batch.x[:, 0, 0, 0] == 3).sum().item()
    assert 0 < flipped < 8 and torch.equal(batch.x[batch.x[:, 0, 0, 0] == 3][0], x[0].flip(-1))


def test_digits_pair_keeps_hidden_labels_and_no_image_in_both_domains():
    for style in ("invert", "rotate", "thicken"):
        data = DigitsPair(DigitsPair.Config(b_style=style)).load()
        assert data.y is not None and data.y_b is not None and len(data.x) + len(data.x_b) == 1437
        plain_b = DigitsPair(DigitsPair.Config(b_style="invert")).load().x_b * -1
        # B's images are the other half: none of them equals an A image
        dist = torch.cdist(data.x.flatten(1), plain_b.flatten(1))
        assert dist.min() > 0
    inv = DigitsPair(DigitsPair.Config(b_style="invert")).load()
    assert inv.x_b.mean() > 0 > inv.x.mean()  # dark digits on white


@pytest.mark.slow
def test_a_short_real_run_learns_to_invert(tmp_path):
    """200 steps at 16x16 on digits <-> inverted digits: translations take B's look both ways."""
    host = load_plugins()
    cfg = make_config(host, "cyclegan", {**SMALL, "train.steps": 200, "train.batch_size": 8,
                                          "variant.generator_width": 8, "variant.critic_width": 8,
                                          "variant.residual_blocks": 1})
    train(host, cfg, tmp_path / "run")
    model, _ = load_model(host, tmp_path / "run")
    test = DigitsPair(DigitsPair.Config(image_size=16, split="test")).load()
    from gancore.inference import translate_images

    to_b = translate_images(model, test.x[:64], "a2b")
    to_a = translate_images(model, test.x_b[:64], "b2a")
    assert test.x.mean() < -0.3 and to_b.mean() > 0.2, to_b.mean()  # white background, like B
    assert test.x_b.mean() > 0.3 and to_a.mean() < -0.2, to_a.mean()


def test_orientation_is_found_checkpointed_and_not_searched_again_on_resume(tmp_path, monkeypatch):
    import json

    import gancore_cyclegan

    host = load_plugins()
    over = {**TINY, "data.image_size": 16, "data.b_style": "rotate", "log.checkpoint_every": 2}
    trainer = train(host, make_config(host, "cyclegan", {**over, "train.steps": 2}), tmp_path / "run")
    found = json.loads((tmp_path / "run" / "init.json").read_text())["orientation"]
    assert (found["angle"], found["mirror"], found["identity"]) == (90.0, False, False)
    g = trainer.built.nets.generator
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(g["a2b"](x, transform=False), g["a2b"].net(x))
    assert torch.equal(g["a2b"](x), g["a2b"].net(torch.rot90(x, 1, dims=(2, 3))))
    assert torch.equal(g["b2a"](x), g["b2a"].net(torch.rot90(x, -1, dims=(2, 3))))

    def no_search(*args, **kwargs):
        raise AssertionError("a resumed run must take the orientation from its checkpoint")

    monkeypatch.setattr(gancore_cyclegan, "orient_generators", no_search)
    resumed = train(host, make_config(host, "cyclegan", {**over, "train.steps": 4}), tmp_path / "run", resume=True)
    assert torch.equal(resumed.built.nets.generator["a2b"].matrix, g["a2b"].matrix)
    model, _ = load_model(host, tmp_path / "run")  # what gancore translate uses
    assert model.nets.generator["a2b"].active and torch.equal(model.nets.generator["b2a"].matrix,
                                                             g["b2a"].matrix)


def test_style_only_domains_keep_the_identity_and_orient_off_skips_the_search(tmp_path):
    import json

    host = load_plugins()
    trainer = train(host, make_config(host, "cyclegan", {**TINY, "train.steps": 1}), tmp_path / "invert")
    assert json.loads((tmp_path / "invert" / "init.json").read_text())["orientation"]["identity"]
    assert not trainer.built.nets.generator["a2b"].active
    over = {**TINY, "train.steps": 1, "data.b_style": "rotate", "variant.orient": "off"}
    trainer = train(host, make_config(host, "cyclegan", over), tmp_path / "off")
    assert not (tmp_path / "off" / "init.json").exists() and not trainer.built.nets.generator["a2b"].active
