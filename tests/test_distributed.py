"""torch.distributed: 2 CPU processes on gloo through `gancore run --nproc 2` (torchrun)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from gancore.cli import cli
from gancore.data import TensorData
from gancore.interfaces import StepContext
from gancore.kernel.sampler import BatchSampler
from gancore.nets import MLPGenerator

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")

# fp32: the weights are compared to float32 tolerance (auto is bf16 on CPUs with bf16 units)
RING = ["--set", "data.name=gaussian-ring", "--set", "log.progress=false", "--set", "log.every=5",
        "--set", "train.precision=fp32"]


def gancore(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "gancore", "run", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def nets(path: Path) -> dict[str, torch.Tensor]:
    (ckpt,) = sorted((path / "checkpoints").glob("step_*.safetensors"))[-1:]
    return {k: v for k, v in load_file(str(ckpt)).items() if k.startswith(("generator.", "critic."))}


def test_sampler_shards_a_global_batch():
    data = TensorData(x=torch.arange(40.0)[:, None])
    whole = BatchSampler(data, 8, torch.device("cpu"), seed=3)
    parts = [BatchSampler(data, 4, torch.device("cpu"), seed=3, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(12):  # across epoch boundaries too
        assert torch.equal(whole.next().x, torch.cat([p.next().x for p in parts]))


def test_latent_noise_is_sharded_from_the_shared_stream():
    g = MLPGenerator(3, 2, 8, 1)
    whole = g.sample_latent(6, generator=torch.Generator().manual_seed(5))
    shards = [StepContext(step=0, device=torch.device("cpu"), rng=torch.Generator().manual_seed(99 + r), rank=r,
                          world_size=2, shared_rng=torch.Generator().manual_seed(5)).latent(g, 3) for r in (0, 1)]
    assert torch.equal(whole, torch.cat(shards))


def test_codes_are_sharded_from_the_shared_stream_after_the_noise():
    from gancore.codes import Code, draw_codes

    g = MLPGenerator(3, 2, 8, 1)
    g.codes = (Code("category", "categorical", 10), Code("c1", "uniform", 2))
    rng = torch.Generator().manual_seed(5)
    g.sample_latent(6, generator=rng)
    whole = draw_codes(g.codes, 6, generator=rng, device="cpu")
    shards = []
    for r in (0, 1):
        ctx = StepContext(step=0, device=torch.device("cpu"), rng=torch.Generator().manual_seed(99 + r), rank=r,
                          world_size=2, shared_rng=torch.Generator().manual_seed(5))
        ctx.latent(g, 3)
        shards.append(ctx.codes(g, 3))
    for name in ("category", "c1"):
        assert torch.equal(whole[name], torch.cat([s[name] for s in shards]))


def test_two_processes_give_the_weights_of_one_process_with_the_doubled_batch(tmp_path):
    gancore("dcgan", "--out", str(tmp_path / "one"), *RING, "--set", "train.batch_size=64", "--set", "train.steps=15")
    proc = gancore("dcgan", "--nproc", "2", "--out", str(tmp_path / "two"), *RING, "--set", "train.batch_size=32",
                   "--set", "train.steps=15")
    assert "2 processes x batch 32" in proc.stderr and proc.stdout.count("done:") == 1  # rank 0 reports
    a, b = nets(tmp_path / "one"), nets(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    one = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    two = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in two] == [5, 10, 15]  # written once, by rank 0, averaged over processes
    assert two[-1]["critic/adv"] == pytest.approx(one[-1]["critic/adv"], abs=1e-4)


def test_wgan_gp_trains_and_resumes_under_ddp(tmp_path):
    run = tmp_path / "gp"
    gancore("wgan", "--nproc", "2", "--out", str(run), *RING, "--set", "train.batch_size=16",
            "--set", "train.steps=10", "--set", "log.checkpoint_every=5")
    gancore("wgan", "--nproc", "2", "--out", str(run), "--resume", "--set", "train.steps=20")
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert all(r["critic/gradient-penalty"] > 0 and torch.isfinite(torch.tensor(r["critic/adv"])) for r in records)
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step_0000020.safetensors"


def test_cyclegan_networks_are_wrapped_one_by_one(tmp_path):
    gancore("cyclegan", "--nproc", "2", "--out", str(tmp_path / "cy"), "--set", "train.batch_size=2",
            "--set", "train.steps=2", "--set", "variant.generator_width=4", "--set", "variant.critic_width=4",
            "--set", "data.image_size=16", "--set", "log.progress=false")
    assert set(k.split(".")[1] for k in nets(tmp_path / "cy") if k.startswith("generator.")) == {"a2b", "b2a"}


def test_out_is_required_under_torchrun(tmp_path):
    result = CliRunner().invoke(cli, ["run", "dcgan"], env={"WORLD_SIZE": "2", "RANK": "0"})
    assert result.exit_code == 2 and "--out is required under torch.distributed" in result.output


def test_a_failing_run_under_nproc_is_one_line_from_the_launcher(tmp_path):
    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "gancore", "run", "dcgan", "--nproc", "2", "--out",
                           str(tmp_path / "run"), "--set", "data.name=image-folder", "--set",
                           f"data.path={tmp_path / 'empty'}"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"gancore: error: data.path: no images (.bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp) found in "
        f"{tmp_path / 'empty'}"]
