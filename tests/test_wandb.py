"""gancore-wandb for real, in W&B's offline mode: the offline run file holds the config, the scalars and
the sample grids; a resumed run continues the same W&B run; no key or no server is one warning line."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from gancore.testing import make_config, train

wandb = pytest.importorskip("wandb")
pb = pytest.importorskip("wandb.proto.wandb_internal_pb2")

RUN = {"train.steps": 10, "train.batch_size": 16, "log.every": 5, "log.sample_every": 10, "log.progress": False,
       "log.checkpoint_every": 5, "wandb.project": "gancore-tests"}


def records(path: Path):
    """The records of a W&B run file (``run-<id>.wandb``): a LevelDB-style log of protobuf records
    (a 7-byte header, 32 KiB blocks, chunks of crc32 / length / type)."""
    raw = path.read_bytes()
    assert raw[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, block, chunks = 7, 32768, []
    while pos + 7 <= len(raw):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        chunks.append(raw[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            rec = pb.Record()
            rec.ParseFromString(b"".join(chunks))
            chunks = []
            yield rec


def finished_records(path: Path, wait_s: float = 60.0) -> list:
    """The run file's records once it holds the run's ``exit`` record: W&B's service process writes the file
    after ``finish()`` has returned (on a slow machine the history rows land a moment later), so wait for it."""
    deadline = time.monotonic() + wait_s
    while True:
        found = list(records(path))
        if any(rec.WhichOneof("record_type") == "exit" for rec in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def logged(run_dir: Path) -> list[dict]:
    """Per W&B run file (oldest first): its run id, config keys, history rows and record kinds."""
    out = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        found = {"id": None, "config": {}, "history": [], "kinds": []}
        for rec in finished_records(path):
            kind = rec.WhichOneof("record_type")
            found["kinds"].append(kind)
            if kind == "run":
                found["id"] = rec.run.run_id
                found["project"] = rec.run.project
                found["config"] = {i.key: json.loads(i.value_json) for i in rec.run.config.update}
            elif kind == "history":
                found["history"].append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                         for i in rec.history.item})
        out.append(found)
    return out


@pytest.fixture(autouse=True)
def _reset_wandb():
    """wandb keeps what it read first (mode, key, server) for the process: reset it after each test."""
    yield
    wandb.teardown()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_offline_run_holds_config_scalars_and_grids_and_resume_continues_it(host, offline, tmp_path):
    assert "wandb" in host.plugin_settings
    out = tmp_path / "run"
    train(host, make_config(host, "dcgan", {**RUN, "train.steps": 5}), out)
    train(host, make_config(host, "dcgan", RUN), out, resume=True)
    run_id = json.loads((out / "wandb.json").read_text())["id"]
    first, second = logged(out)
    assert first["id"] == second["id"] == run_id and first["project"] == "gancore-tests"
    assert first["config"]["train"]["batch_size"] == 16 and first["config"]["wandb"]["project"] == "gancore-tests"
    steps = [row["_step"] for row in first["history"]] + [row["_step"] for row in second["history"]]
    assert steps == [5, 10]
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = second["history"][-1]
    assert last["critic/adv"] == pytest.approx(metrics[-1]["critic/adv"])
    assert last["samples/_type"] == "image-file" and last["samples/path"].endswith(".png")
    media = list(out.glob("wandb/offline-run-*/files/" + last["samples/path"]))
    assert media and media[0].stat().st_size > 0


def test_evaluations_are_logged(host, offline, tmp_path):
    train(host, make_config(host, "dcgan", {**RUN, "train.steps": 5, "eval.every": 5, "eval.n": 64,
                                            "eval.metrics": [{"name": "kid", "subsets": 2, "subset_size": 32}]}),
          tmp_path / "run")
    (found,) = logged(tmp_path / "run")
    assert any(key.startswith("eval/kid/") for row in found["history"] for key in row), found


def test_disabled_for_one_run(host, offline, tmp_path):
    train(host, make_config(host, "dcgan", {**RUN, "train.steps": 1, "wandb.enabled": False}), tmp_path / "run")
    assert not (tmp_path / "run" / "wandb").exists() and not (tmp_path / "run" / "wandb.json").exists()


@pytest.mark.parametrize("server", ["no key", "unreachable"])
def test_no_key_or_no_server_is_one_warning_and_training_goes_on(host, monkeypatch, tmp_path, server):
    from gancore.kernel.trainer import Trainer

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    if server == "unreachable":
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    lines: list[str] = []
    cfg = make_config(host, "dcgan", {**RUN, "train.steps": 2, "wandb.init_timeout": 5})
    trainer = Trainer(host, cfg, tmp_path / "run", echo=lines.append)
    result = trainer.train()
    warnings = [line for line in lines if line.startswith("warning:")]
    assert result.step == 2 and len(warnings) == 1, lines
    assert warnings[0].startswith("warning: wandb: could not start the W&B run (") and "\n" not in warnings[0]
    assert warnings[0].endswith("training continues without W&B")
