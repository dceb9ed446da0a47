"""The 2-D Gaussian mixtures and the mode-coverage statistics."""

from __future__ import annotations

import math

import torch

from gancore.data.mixtures import GaussianGrid, GaussianRing
from gancore.metrics.modes import Modes, mode_stats


def test_ring_has_8_modes_of_radius_2_and_std_002():
    data = GaussianRing(GaussianRing.Config(n_samples=40_000)).load()
    assert data.x.shape == (40_000, 2) and data.num_classes == 8 and data.spec.kind == "vector"
    centres = data.landmarks
    assert torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    offsets = data.x - centres[data.y]
    assert abs(offsets.std().item() - 0.02) < 0.001 and data.scale == 0.02
    assert torch.bincount(data.y).min() > 4000  # equal weights


def test_grid_has_25_modes_at_the_even_integers():
    data = GaussianGrid(GaussianGrid.Config(n_samples=50_000, seed=3)).load()
    assert data.num_classes == 25 and data.scale == 0.05
    assert sorted(set(data.landmarks[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert abs((data.x - data.landmarks[data.y]).std().item() - 0.05) < 0.002
    again = GaussianGrid(GaussianGrid.Config(n_samples=50_000, seed=3)).load()
    assert torch.equal(data.x, again.x)


def test_mode_stats_on_perfect_collapsed_and_diffuse_samples():
    grid = GaussianGrid(GaussianGrid.Config(n_samples=2500))
    centres, std = grid.centres(), grid.std
    perfect = grid.load().x
    stats = mode_stats(perfect, centres, std)
    # within 3 std in 2-D: 1 - exp(-9/2) of a Gaussian's mass (the chi distribution)
    assert stats["modes"] == 25 and abs(stats["high_quality"] - (1 - math.exp(-4.5))) < 0.01
    collapsed = centres[7] + 0.01 * torch.randn(2500, 2)
    stats = mode_stats(collapsed, centres, std)
    assert stats["modes"] == 1 and stats["high_quality"] == 1.0
    diffuse = torch.rand(2500, 2) * 10 - 5
    stats = mode_stats(diffuse, centres, std)
    assert stats["high_quality"] < 0.05
    # a point just inside 3 std of its mode counts; just beyond it does not
    edge = centres[:2] + torch.tensor([[0.149, 0.0], [0.151, 0.0]])
    assert mode_stats(edge, centres, std)["modes"] == 1


def test_modes_metric_needs_landmarks():
    import pytest

    from gancore.data import TensorData
    from gancore.errors import ConfigError

    class Context:  # what Modes.compute uses of a MetricContext
        dataset = GaussianGrid.name

        def __init__(self, data, fake):
            self.data, self.fake = data, fake

        def real(self, split="test"):
            return self.data, "all"

        def samples(self):
            return self.fake

    grid = GaussianGrid()
    data = grid.load()
    out = Modes().compute(Context(data, data.x[:100]))
    assert out["total_modes"] == 25
    with pytest.raises(ConfigError, match="no mode centres"):
        Modes().compute(Context(TensorData(x=torch.zeros(3, 2)), torch.zeros(3, 2)))


def test_the_readme_command_resolves_to_the_benchmarked_grid_settings():
    """The README's WGAN-GP-on-25-Gaussians command, with the plugin's data-aware defaults alone,
    resolves to the settings the grid sweep found (``benchmarks/mixtures.py``'s ``wgan-gp-toy``) and
    is what the benchmark's ``readme`` entry runs; the user guide shows the same command."""
    import json
    import re
    import shlex
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    from gancore.cli import cli

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    line = re.search(r"^(gancore run wgan [^#\n]*gaussian-grid)\s*#", readme, re.M)
    assert line, "the README lost its WGAN-GP on 25 Gaussians command"
    args = shlex.split(line.group(1))
    guide = (root / "docs" / "user-guide.md").read_text()
    assert line.group(1).strip() in guide

    sys.path.insert(0, str(root / "benchmarks"))
    try:
        from mixtures import COMMON, LOGGING, VARIANTS
    finally:
        sys.path.pop(0)
    assert VARIANTS["readme"] == args[2:]

    def resolved(argv: list[str]) -> dict:
        out = CliRunner().invoke(cli, ["run", *argv, "--dry-run"])
        assert out.exit_code == 0, out.output
        cfg = {k: v for k, v in json.loads(out.output).items() if k not in ("log", "eval")}
        cfg["train"].pop("precision")  # the benchmark pins fp32; auto is fp32 on the CPU
        return cfg

    defaults = resolved([*args[2:], *LOGGING])
    toy = resolved([*VARIANTS["wgan-gp-toy"], *COMMON, "--set", "train.steps=6000"])
    assert defaults == toy
    assert defaults["regularizers"][0]["weight"] == 1.0 and defaults["train"]["batch_size"] == 256
