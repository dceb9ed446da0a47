"""Augmentation of the critic's inputs (``augment.name``): DiffAugment and ADA as the papers' code does them,
applied by the kernel to every image a critic sees for every variant, twice differentiable, resumed bitwise."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from gancore import Augment, hookimpl
from gancore.app import load_plugins
from gancore.augment import ADA, ADASettings, DiffAugment, DiffAugmentSettings, reflect_sample
from gancore.cli import cli
from gancore.errors import ConfigError
from gancore.testing import SMALL, make_config, train, weights

TINY = {**SMALL, "variant.generator_width": 4, "variant.critic_width": 4, "train.batch_size": 4, "log.samples": 3}


def images(n: int = 6, c: int = 3, h: int = 12, w: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- the operations -----------------------------------------------------------------------------------------


def official_diffaugment(x: torch.Tensor, rng: torch.Generator, policy: str) -> torch.Tensor:
    """mit-han-lab/data-efficient-gans DiffAugment_pytorch.py, its draws taken from ``rng`` in its order."""
    def rand(*s):
        return torch.rand(*s, generator=rng)

    def randint(lo, hi, s):
        return torch.randint(lo, hi, s, generator=rng)

    for p in policy.split(","):
        if p == "color":
            x = x + (rand(x.size(0), 1, 1, 1) - 0.5)
            x_mean = x.mean(dim=1, keepdim=True)
            x = (x - x_mean) * (rand(x.size(0), 1, 1, 1) * 2) + x_mean
            x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
            x = (x - x_mean) * (rand(x.size(0), 1, 1, 1) + 0.5) + x_mean
        elif p == "translation":
            shift_x, shift_y = int(x.size(2) * 0.125 + 0.5), int(x.size(3) * 0.125 + 0.5)
            translation_x = randint(-shift_x, shift_x + 1, [x.size(0), 1, 1])
            translation_y = randint(-shift_y, shift_y + 1, [x.size(0), 1, 1])
            grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(x.size(0)), torch.arange(x.size(2)),
                                                        torch.arange(x.size(3)), indexing="ij")
            grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
            grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
            x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
            x = x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)
        else:
            cutout_size = int(x.size(2) * 0.5 + 0.5), int(x.size(3) * 0.5 + 0.5)
            offset_x = randint(0, x.size(2) + (1 - cutout_size[0] % 2), [x.size(0), 1, 1])
            offset_y = randint(0, x.size(3) + (1 - cutout_size[1] % 2), [x.size(0), 1, 1])
            grid_batch, grid_x, grid_y = torch.meshgrid(torch.arange(x.size(0)), torch.arange(cutout_size[0]),
                                                        torch.arange(cutout_size[1]), indexing="ij")
            grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
            grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
            mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype)
            mask[grid_batch, grid_x, grid_y] = 0
            x = x * mask.unsqueeze(1)
    return x


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("size", [(12, 12), (9, 14)])
def test_diffaugment_is_the_official_code(policy, size):
    x = images(h=size[0], w=size[1])
    ours = DiffAugment(DiffAugmentSettings(policy=policy)).apply(x, torch.Generator().manual_seed(3), 1)
    theirs = official_diffaugment(x, torch.Generator().manual_seed(3), policy)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    assert not torch.equal(ours, x)


def test_diffaugment_colours_each_stacked_image_on_its_own_channels():
    """pix2pix's critic sees cat([A, B]): saturation and contrast take each image's own means, the
    translation and the cutout move both together."""
    a, b = images(c=3, seed=1), images(c=3, seed=2)
    both = DiffAugment(DiffAugmentSettings()).apply(torch.cat([a, b], 1), torch.Generator().manual_seed(4), 2)
    alone = DiffAugment(DiffAugmentSettings()).apply(a, torch.Generator().manual_seed(4), 1)
    torch.testing.assert_close(both[:, :3], alone)


def test_reflect_sample_is_grid_sample_with_reflection():
    x = images(n=3, c=2, h=7, w=10)
    coords = torch.rand(3, 7, 10, 2, generator=torch.Generator().manual_seed(5)) * 30 - 10
    grid = torch.stack([2 * coords[..., 0] / 9 - 1, 2 * coords[..., 1] / 6 - 1], -1)
    expected = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    torch.testing.assert_close(reflect_sample(x, coords), expected, rtol=1e-5, atol=1e-5)


def ada(channels: int = 3, **settings) -> ADA:
    a = ADA(ADASettings(**settings))
    a.setup(torch.device("cpu"), channels)
    return a


GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def only(*names: str, p: float = 1.0) -> ADA:
    return ada(p=p, **{k: (1.0 if k in names else 0.0) for k in GEOMETRIC + COLOUR})


def test_ada_at_p_zero_is_the_identity():
    x = images()
    assert torch.equal(ada(p=0.0).apply(x, torch.Generator().manual_seed(0), 1), x)


def test_ada_flips_and_quarter_turns_are_exact():
    x = images(n=32, h=8, w=8)
    out = only("xflip", "rotate90").apply(x, torch.Generator().manual_seed(1), 1)
    seen = set()
    for i in range(len(x)):
        variants = {(f, k): torch.rot90(x[i].flip(-1) if f else x[i], k, dims=(1, 2)) for f in (0, 1) for k in range(4)}
        match = [key for key, v in variants.items() if torch.allclose(out[i], v, atol=1e-5)]
        assert match, f"sample {i} is no flip/rotation of its input"
        seen.add(match[0])
    assert len(seen) >= 6  # the draws cover the group


def test_ada_integer_translation_moves_whole_pixels_with_reflection():
    x = images(n=16, h=16, w=16)
    out = only("xint").apply(x, torch.Generator().manual_seed(2), 1)
    padded = F.pad(x, [3, 3, 3, 3], mode="reflect")  # shifts up to 0.125 * 16 = 2 pixels
    moved = 0
    for i in range(len(x)):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                  if torch.allclose(out[i], padded[i, :, 3 + dy:19 + dy, 3 + dx:19 + dx], atol=1e-5)]
        assert shifts or torch.allclose(out[i], x[i]), f"sample {i}"
        moved += bool(shifts and shifts[0] != (0, 0))
    assert moved >= 8


def test_ada_colour_matrix_on_one_channel_images_is_stylegan2_adas():
    """Brightness and contrast on one channel: x * mean-of-rows-sum + offset (stylegan2-ada's grey path)."""
    x = images(c=1)
    rng = torch.Generator().manual_seed(7)
    out = only("brightness", "contrast").apply(x, rng, 1)
    # the same draws, by hand: brightness (rand, randn) then contrast (rand, randn)
    r = torch.Generator().manual_seed(7)
    pb, b = torch.rand(6, generator=r), torch.randn(6, generator=r) * 0.2
    pc, c = torch.rand(6, generator=r), torch.exp2(torch.randn(6, generator=r) * 0.5)
    b, c = torch.where(pb < 1.0, b, 0.0), torch.where(pc < 1.0, c, 1.0)
    torch.testing.assert_close(out, x * c.view(-1, 1, 1, 1) + (c * b).view(-1, 1, 1, 1), rtol=1e-5, atol=1e-5)


def test_ada_hue_and_saturation_keep_grey_pixels_grey():
    grey = images(c=1).expand(-1, 3, -1, -1).contiguous()
    out = only("hue", "saturation").apply(grey, torch.Generator().manual_seed(8), 1)
    torch.testing.assert_close(out, grey, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: DiffAugment(DiffAugmentSettings()), lambda: ada(p=0.9)],
                         ids=["diffaugment", "ada"])
def test_augmentations_are_twice_differentiable(make):
    """R1 through the augmentation: gradgradcheck in float64 with fixed draws."""
    aug = make()
    x = images(n=2, c=3, h=6, w=6).double().requires_grad_()
    if isinstance(aug, ADA):
        aug.p = aug.p.double()

    def f(t):
        return aug.apply(t, torch.Generator().manual_seed(9), 1)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_ada_adjusts_p_by_the_sign_of_rt_minus_the_target():
    a = ada(interval=2, kimg=1.0, target=0.6)
    assert a.adaptive and float(a.p) == 0.0
    for _ in range(2):
        a.observe(torch.tensor([1.0, 2.0, -1.0, 3.0]))  # sign mean 0.5 each: under the target
    a.adjust(1, 64, lambda t: t)  # not an interval boundary: nothing moves
    assert float(a.p) == 0.0
    a.adjust(2, 64, lambda t: t)
    assert float(a.p) == 0.0 and float(a.rt) == 0.5  # clamped at 0
    for _ in range(2):
        a.observe(torch.ones(4))
    a.adjust(4, 64, lambda t: t)
    assert math.isclose(float(a.p), 64 * 2 / 1000, rel_tol=1e-6) and float(a.rt) == 1.0
    fixed = ada(p=0.25)
    fixed.observe(torch.ones(4))
    fixed.adjust(4, 64, lambda t: t)
    assert not fixed.adaptive and float(fixed.p) == 0.25


# -- the kernel applies it -------------------------------------------------------------------------------

CALLS: list[tuple[tuple[int, ...], int, bool]] = []


class Recording(Augment):
    """Mirrors every image and records (shape, groups, whether a gradient flows to the generator)."""

    name = "test-recording"

    def apply(self, x, rng, groups):
        CALLS.append((tuple(x.shape), groups, x.requires_grad))
        return x.flip(3)


class _Plugin:
    @hookimpl
    def gancore_register_augments(self) -> list[type]:
        return [Recording]


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra=[("test-augment", _Plugin())])


VARIANTS = {
    "dcgan": {},
    "cgan": {},
    "wgan": {"variant.mode": "gp"},
    "infogan": {},
    "siamese": {"variant.vec_len": 8},
    "siamese-translate": {"variant.vec_len": 8, "variant.mode": "translate", "variant.unet_depth": 2},
    "cyclegan": {"variant.residual_blocks": 1},
    "pix2pix": {},
    "vaegan": {},
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_augments_every_image_its_critic_sees(host, tmp_path, name):
    variant = name.split("-")[0]
    CALLS.clear()
    cfg = make_config(host, variant, {**TINY, **VARIANTS[name], "train.steps": 1, "augment.name": "test-recording"})
    train(host, cfg, tmp_path / "run")
    assert CALLS, "the critic's inputs were not augmented"
    critic_phase = [c for c in CALLS if not c[2]]
    generator_phase = [c for c in CALLS if c[2]]
    assert len(critic_phase) >= 2 and generator_phase, CALLS  # real and fake; and fakes with a gradient
    assert all(len(shape) == 4 for shape, _, _ in CALLS)
    if variant == "pix2pix":  # cat([A, B]) along the channels: two images per sample
        assert {g for _, g, _ in CALLS} == {2}
    else:
        assert {g for _, g, _ in CALLS} == {1}


def test_penalties_see_augmented_images_unless_switched_off(host, tmp_path):
    base = {**TINY, "train.steps": 1, "augment.name": "test-recording", "regularizers": [{"name": "r1"}]}
    CALLS.clear()
    train(host, make_config(host, "dcgan", base), tmp_path / "on")
    on = len(CALLS)
    CALLS.clear()
    train(host, make_config(host, "dcgan", {**base, "augment.penalties": False}), tmp_path / "off")
    assert on == len(CALLS) + 1  # R1's critic call on the real batch


def test_no_augment_no_wrapper(host, tmp_path):
    trainer = train(host, make_config(host, "dcgan", TINY), tmp_path / "run")
    assert trainer.state.augment is None
    assert all(type(v.critic).__name__ != "AugmentedCritic" for v in trainer.runner.views.values())
    assert "augment" not in json.loads((tmp_path / "run" / "config.json").read_text())


@pytest.mark.parametrize("augment", [{"augment.name": "ada", "augment.kimg": 0.05, "augment.interval": 1,
                                      "optim.critic.lr": 0.02},  # a critic that quickly says "real"
                                     {"augment.name": "diffaugment"}], ids=["ada", "diffaugment"])
def test_resume_is_bitwise_with_augmentation(host, tmp_path, augment):
    over = {**TINY, **augment, "train.steps": 6, "log.checkpoint_every": 3, "regularizers": [{"name": "r1"}]}
    straight = train(host, make_config(host, "dcgan", over), tmp_path / "straight")
    cfg = make_config(host, "dcgan", {**over, "train.steps": 3})
    train(host, cfg, tmp_path / "split")
    resumed = train(host, make_config(host, "dcgan", over), tmp_path / "split", resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    if augment["augment.name"] == "ada":
        p = straight.state.augment.augment.p
        assert 0 < float(p) <= 1 and torch.equal(p, resumed.state.augment.augment.p)
        logged = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
        assert [r["augment/p"] for r in logged if "augment/p" in r][-1] == pytest.approx(float(p))


def test_fixed_p_is_logged_and_not_adapted(host, tmp_path):
    train(host, make_config(host, "dcgan", {**TINY, "augment.name": "ada", "augment.p": 0.3}), tmp_path / "run")
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ps = [r["augment/p"] for r in logged if "step" in r and "augment/p" in r]
    assert ps and all(p == pytest.approx(0.3) for p in ps)
    assert not any("augment/rt" in r for r in logged)


@pytest.mark.parametrize(("over", "message"), [
    ({"augment.name": "nope"}, "augment.name:"),
    ({"augment.name": "diffaugment", "augment.policy": "color,blur"}, "augment.policy:"),
    ({"augment.name": "ada", "augment.p": 2}, "augment.p:"),
    ({"augment.name": "diffaugment", "augment.strength": 1}, "augment.strength: unknown key"),
    ({"augment.name": "diffaugment", "data.name": "gaussian-ring"}, "augment.name: diffaugment augments images"),
])
def test_bad_augment_settings_are_one_line_errors(host, over, message):
    base = {} if "data.name" in over else TINY
    with pytest.raises(ConfigError) as info:
        make_config(host, "dcgan", {**base, **over})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_variant_without_a_critic_is_refused(host, tmp_path):
    with pytest.raises(ConfigError, match="has no critic"):
        train(host, make_config(host, "vae", {**SMALL, "augment.name": "diffaugment"}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_list_augments_and_config_show_them():
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "augments"])
    assert listed.exit_code == 0 and "diffaugment" in listed.output and "ada" in listed.output
    shown = runner.invoke(cli, ["config", "dcgan", "--set", "augment.name=ada"])
    assert shown.exit_code == 0, shown.output
    assert "[augment]" in shown.output and "kimg" in shown.output
