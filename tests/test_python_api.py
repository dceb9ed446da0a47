"""gancore from Python (issue 26): train / load / Model, users' own data, fine-tuning and export."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import gancore
from gancore.cli import cli

QUICK = {"train.steps": 4, "log.sample_every": 1000, "log.checkpoint_every": 2, "train.batch_size": 16}


def tensors_16(n: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


class DigitsLike(torch.utils.data.Dataset):
    """A map-style dataset of uint8 images with labels, as a torchvision dataset gives them."""

    def __init__(self, n: int = 40) -> None:
        g = torch.Generator().manual_seed(1)
        self.x = torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
        self.y = torch.arange(n) % 4

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, gancore.Model]:
    out = tmp_path_factory.mktemp("api") / "run"
    model = gancore.train("dcgan", out=out, data=tensors_16(), set=QUICK, progress=False)
    return out, model


def test_train_returns_the_model_and_writes_the_run_directory(trained):
    out, model = trained
    assert isinstance(model, gancore.Model) and model.step == 4 and model.variant == "dcgan"
    assert json.loads((out / "config.json").read_text())["data"]["name"] == "torch-dataset"
    assert model.config["train"]["steps"] == 4
    x = model.sample(6, seed=2)
    assert x.shape == (6, 1, 16, 16) and x.abs().max() <= 1
    assert torch.equal(x, model.sample(6, seed=2)) and not torch.equal(x, model.sample(6, seed=3))
    assert set(model.networks) >= {"generator", "critic"}
    assert isinstance(model.generator, torch.nn.Module)


def test_the_cli_samples_a_run_trained_from_a_python_object(trained, tmp_path):
    """The stored data spec is enough: the CLI never saw the tensor the run was trained on."""
    out, model = trained
    npy = tmp_path / "s.npy"
    result = CliRunner().invoke(cli, ["sample", str(out), "--n", "5", "--seed", "7", "--out", str(npy)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(npy), model.sample(5, seed=7).numpy())
    assert torch.equal(gancore.load(out).sample(5, seed=7), model.sample(5, seed=7))


def test_resuming_such_a_run_from_the_cli_says_how(trained):
    out, _ = trained
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(out), "--resume", "--set", "train.steps=6"])
    assert result.exit_code == 2 and "gancore.train(data=" in result.output and "Traceback" not in result.output


def test_a_torch_dataset_resumed_from_python_continues_bitwise(tmp_path):
    data = DigitsLike()
    settings = {**QUICK, "train.steps": 6, "log.every": 1}
    whole = gancore.train("cgan", out=tmp_path / "whole", data=data, set=settings, progress=False)
    gancore.train("cgan", out=tmp_path / "split", data=data, set={**settings, "train.steps": 3}, progress=False)
    resumed = gancore.train("cgan", out=tmp_path / "split", data=data, set={"train.steps": 6}, resume=True,
                            progress=False)
    assert whole.step == resumed.step == 6
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step_0000006.safetensors"))
    b = load_file(str(tmp_path / "split" / "checkpoints" / "step_0000006.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in again] == [r["step"] for r in lines]
    losses = [{k: v for k, v in r.items() if "/" in k and not k.startswith("time/")} for r in lines]
    assert losses[0] and losses == [{k: v for k, v in r.items() if k in losses[0]} for r in again]
    x = whole.sample(8, seed=0, labels=3)
    assert x.shape == (8, 1, 16, 16)
    assert not torch.equal(whole.sample(4, seed=0, labels=[0, 1, 2, 3]), whole.sample(4, seed=0, labels=0))


def test_a_factory_rebuilds_the_data_in_every_process(tmp_path, monkeypatch):
    (tmp_path / "my_data.py").write_text(textwrap.dedent("""
        import torch

        def make(n=32):
            return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1

        def nothing():
            return None
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    run = tmp_path / "run"
    args = ["run", "dcgan", "--out", str(run), "--set", "data.name=torch-dataset", "--set", "data.factory=my_data:make",
            "--set", 'data.kwargs={"n": 24}', "--set", "train.steps=2", "--set", "train.batch_size=8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(run), "--resume", "--set", "train.steps=3"])
    assert result.exit_code == 0, result.output

    def error(*sets: str) -> str:
        res = CliRunner().invoke(cli, ["run", "dcgan", "--out", str(tmp_path / "bad"), "--set",
                                       "data.name=torch-dataset", *[a for s in sets for a in ("--set", s)]])
        assert res.exit_code == 2 and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad").exists()
        return res.output.strip()

    assert "cannot import 'no_such_module'" in error("data.factory=no_such_module:make")
    assert "returned None" in error("data.factory=my_data:nothing")
    assert "no callable 'missing'" in error("data.factory=my_data:missing")
    assert "not package.module:function" in error("data.factory=justaname")


@pytest.mark.parametrize(("data", "message"), [
    (torch.zeros(0, 1, 16, 16), "empty"),
    ([torch.zeros(1, 16, 16), torch.zeros(1, 8, 8)], "item 1 has shape [1, 8, 8]"),
    ([torch.zeros(1, 16, 16), "text"], "item 1 is a str"),
    ([torch.zeros(1, 16, 16)] * 2 + [torch.zeros(2, 16, 16)], "item 2 has shape"),
    (torch.full((4, 1, 16, 16), 3.0), "outside [-1, 1]"),
    ([(torch.zeros(1, 16, 16), 0), (torch.zeros(1, 16, 16), 1.5)], "item 1: the label 1.5"),
    (torch.zeros(4, 16, 16), "expected [N, C, H, W]"),
    (42, "not a map-style dataset"),
])
def test_bad_items_are_one_line_naming_the_index(tmp_path, data, message):
    with pytest.raises(gancore.ConfigError) as info:
        gancore.train("dcgan", out=tmp_path / "r", data=data, set=QUICK, progress=False)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "r").exists()


def test_a_hugging_face_dataset_folder_trains(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)) for _ in range(24)]
    features = datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(num_classes=3)})
    ds = datasets.Dataset.from_dict({"img": images, "digit": [i % 3 for i in range(24)]}, features=features)
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "hf"))
    base = ["run", "cgan", "--set", "data.name=hf-dataset", "--set", f"data.path={tmp_path / 'hf'}",
            "--set", "data.image_column=img", "--set", "train.steps=2", "--set", "train.batch_size=8"]
    result = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "run"), "--set", "data.label_column=digit"])
    assert result.exit_code == 0, result.output
    model = gancore.load(tmp_path / "run")
    assert model.sample(3, seed=0, labels=2).shape == (3, 1, 16, 16)
    bad = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "bad"), "--set", "data.label_column=nope"])
    assert bad.exit_code == 2 and "data.label_column: " in bad.output and "no column 'nope'" in bad.output
    split = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "bad"), "--set", "data.split=test"])
    assert split.exit_code == 2 and "no split 'test'" in split.output


def test_export_hf_gives_the_same_samples_and_a_model_card(trained, tmp_path):
    out, model = trained
    result = CliRunner().invoke(cli, ["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert meta["variant"] == "dcgan" and meta["player"] == "generator" and meta["plugin"]["name"] == "gancore-dcgan"
    assert meta["data_spec"]["shape"] == [1, 16, 16] and meta["latent"]["dim"] == model.generator.latent_dim
    assert "# dcgan" in (tmp_path / "hf" / "README.md").read_text()
    exported = gancore.load(tmp_path / "hf")
    assert torch.equal(exported.sample(5, seed=11), model.sample(5, seed=11))
    critic = model.export(tmp_path / "critic", player="critic")
    with pytest.raises(gancore.ConfigError, match="holds the 'critic' network only"):
        gancore.load(critic).sample(2)
    with pytest.raises(gancore.ConfigError, match="--player: variant 'dcgan' has no player 'encoder'"):
        model.export(tmp_path / "x", player="encoder")


def test_plain_torch_and_safetensors_load_an_exported_generator(trained, tmp_path):
    """docs/python.md's few lines for the built-in networks."""
    _, model = trained
    folder = model.export(tmp_path / "hf")
    from safetensors.torch import load_file as load_weights

    from gancore.nets import DCGANGenerator

    meta = json.loads((folder / "config.json").read_text())
    settings = meta["run_config"]["variant"]
    g = DCGANGenerator(meta["latent"]["dim"], meta["data_spec"]["shape"][0], meta["data_spec"]["shape"][-1],
                       settings["generator_width"])
    g.load_state_dict(load_weights(str(folder / "model.safetensors")))
    g.eval()
    z = torch.randn(3, meta["latent"]["dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(g(z), model.generator(z))


def test_onnx_export_matches_torch(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    _, model = trained
    path = model.export(tmp_path / "g.onnx", format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z"]
    for n in (1, 5):  # a dynamic batch axis
        z = model.generator.sample_latent(n, generator=torch.Generator().manual_seed(n), device="cpu")
        with torch.no_grad():
            expected = model.generator(z).numpy()
        got = session.run(None, {"z": z.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_onnx_names_the_label_input_of_a_conditional_generator(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = gancore.train("cgan", out=tmp_path / "c", data=DigitsLike(), set={**QUICK, "train.steps": 1},
                          progress=False)
    path = model.export(tmp_path / "c.onnx", format="onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "y"]
    z = model.generator.sample_latent(3, generator=torch.Generator().manual_seed(0), device="cpu")
    y = torch.tensor([0, 1, 3])
    with torch.no_grad():
        expected = model.generator(z, y).numpy()
    assert np.abs(session.run(None, {"z": z.numpy(), "y": y.numpy()})[0] - expected).max() < 1e-4


def test_init_from_fine_tunes_and_refuses_a_mismatch_in_one_line(tmp_path):
    base = {"train.steps": 2, "train.batch_size": 8, "log.sample_every": 1000}
    source = gancore.train("dcgan", out=tmp_path / "a", set=base, progress=False)  # the digits at 32x32
    tuned = gancore.train("dcgan", out=tmp_path / "b", set={**base, "train.steps": 1,
                                                            "train.init_from": str(tmp_path / "a")},
                          progress=False)
    assert tuned.step == 1
    start = {k: v for k, v in source.networks["generator"].state_dict().items()}
    moved = [k for k, v in tuned.networks["generator"].state_dict().items()
             if v.dtype.is_floating_point and not torch.equal(v, start[k])]
    assert moved  # trained one step on from the source's weights, not from scratch
    for path in (tmp_path / "a", tmp_path / "a" / "checkpoints" / "step_0000002.safetensors",
                 source.export(tmp_path / "exp")):
        again = gancore.train("dcgan", out=tmp_path / f"c{hash(str(path)) % 1000}",
                              set={**base, "train.steps": 1, "train.init_from": str(path)}, progress=False)
        assert again.step == 1
    with pytest.raises(gancore.ConfigError) as info:
        gancore.train("dcgan", out=tmp_path / "big", set={**base, "data.image_size": 64,
                                                          "train.init_from": str(tmp_path / "a")}, progress=False)
    text = str(info.value)
    assert text.startswith("train.init_from: ") and "tensor 'generator." in text and "expected shape" in text
    assert "found" in text and "\n" not in text and not (tmp_path / "big").exists()
    loose = gancore.train("dcgan", out=tmp_path / "loose", set={**base, "train.steps": 1, "data.image_size": 64,
                                                                "train.init_from": str(tmp_path / "a"),
                                                                "train.init_strict": False}, progress=False)
    assert loose.step == 1
    with pytest.raises(gancore.ConfigError, match="train.init_from: .* does not exist"):
        gancore.train("dcgan", out=tmp_path / "n", set={**base, "train.init_from": str(tmp_path / "nope")},
                      progress=False)


def test_config_and_set_and_errors_as_exceptions(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  steps: 2\n  batch_size: 8\nlog:\n  sample_every: 1000\n")
    model = gancore.train("dcgan", out=tmp_path / "y", config=tmp_path / "c.yaml", progress=False)
    assert model.step == 2
    model = gancore.train("dcgan", out=tmp_path / "d", config={"train": {"steps": 1, "batch_size": 8}},
                          set={"log.sample_every": 1000}, progress=False)
    assert model.step == 1
    with pytest.raises(gancore.ConfigError, match="train.stepz"):
        gancore.train("dcgan", out=tmp_path / "e", set={"train.stepz": 1})
    with pytest.raises(gancore.GancoreError, match="unknown variant"):
        gancore.train("no-such-gan", out=tmp_path / "f")
    with pytest.raises(gancore.CheckpointError, match="no such run directory"):
        gancore.load(tmp_path / "nowhere")


def test_evaluate_returns_what_gancore_eval_stores(trained):
    _, model = trained
    with pytest.raises(gancore.ConfigError, match="pass it again as data="):
        model.evaluate(["fid"], n=64)
    results = model.evaluate(["fid", "kid"], n=64, data=tensors_16(), kid={"subset_size": 32})
    assert [r["metric"] for r in results] == ["fid", "kid"] and results[0]["step"] == 4
    assert results[0]["values"]["fid"] > 0 and results[1]["provenance"]["subset_size"] == 32


def test_the_python_api_does_not_need_pytest(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["pytest"] = None  # any import of pytest fails
        import torch, gancore
        m = gancore.train("dcgan", out={str(tmp_path / 'r')!r}, data=torch.zeros(8, 1, 16, 16),
                          set={{"train.steps": 1, "train.batch_size": 4, "log.sample_every": 1000}}, progress=False)
        print(gancore.load({str(tmp_path / 'r')!r}).sample(2, seed=0).shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch.Size([2, 1, 16, 16])" in proc.stdout


def test_a_torch_dataset_packs_and_trains_from_the_pack(tmp_path, monkeypatch):
    (tmp_path / "pix.py").write_text(textwrap.dedent("""
        import torch

        def make():
            g = torch.Generator().manual_seed(0)
            return [(torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g), i % 2) for i in range(20)]
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    result = CliRunner().invoke(cli, ["data", "pack", "torch-dataset", "--out", str(tmp_path / "p.pack"),
                                      "--set", "data.factory=pix:make"])
    assert result.exit_code == 0, result.output
    import pix

    from gancore.data.pack import open_pack

    pack = open_pack(tmp_path / "p.pack")
    assert np.array_equal(pack.arrays["images"], torch.stack([x for x, _ in pix.make()]).numpy())
    assert pack.arrays["labels"].tolist() == [i % 2 for i in range(20)]
    model = gancore.train("dcgan", out=tmp_path / "r", set={**QUICK, "train.steps": 1, "train.batch_size": 4,
                                                            "data.name": "pack", "data.path": str(tmp_path / "p.pack")},
                          progress=False)
    assert model.sample(2, seed=0).shape == (2, 3, 16, 16)


def test_worker_processes_read_the_same_items_in_order(tmp_path):
    from PIL import Image

    from gancore.data.torch_dataset import to_tensor_data

    class Pictures(torch.utils.data.Dataset):
        """Items that decode PNG files, as an image-folder dataset does."""

        def __init__(self, folder: Path) -> None:
            self.files = sorted(folder.glob("*.png"))

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, i: int):
            return Image.open(self.files[i]).convert("RGB"), i % 3

    rng = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i:02d}.png")
    one = to_tensor_data(Pictures(tmp_path))
    two = to_tensor_data(Pictures(tmp_path), workers=2)
    assert one.x.dtype == torch.uint8 and one.x.shape == (30, 3, 8, 8)
    assert torch.equal(one.x, two.x) and torch.equal(one.y, two.y) and one.num_classes == 3
    (tmp_path / "05.png").write_bytes(b"not a png")
    for workers in (0, 2):
        with pytest.raises(gancore.ConfigError, match=r"^data: item 5: reading it raised UnidentifiedImageError"):
            to_tensor_data(Pictures(tmp_path), workers=workers)
