"""Issue 30: the precision ``auto`` picks from the hardware (decided with both kinds of CPU faked), the
thread policy (OMP_NUM_THREADS wins, cores from affinity and cgroup quota, divided among live gancore
processes found through real locks held by real processes), the slowdown note, and the run's first line
and config.json saying what was chosen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from gancore.app import load_plugins
from gancore.errors import ConfigError
from gancore.kernel import threads as th
from gancore.kernel.phases import PhaseRunner
from gancore.kernel.precision import choose_precision, cpu_flags
from gancore.testing import make_config, train

XEON = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
OLD = "processor\t: 0\nflags\t\t: fpu sse4_2 avx2\n"


def test_auto_picks_bf16_only_where_the_cpu_has_bf16_units():
    assert choose_precision("auto", "cpu", flags=cpu_flags(XEON)) == ("bf16", "auto: the CPU has AMX bf16 units")
    assert choose_precision("auto", "cpu", flags=cpu_flags(EPYC)) == ("bf16", "auto: the CPU has AVX-512-BF16 units")
    assert choose_precision("auto", "cpu", flags=cpu_flags(OLD)) == (
        "fp32", "auto: the CPU has no bf16 units (AMX or AVX-512-BF16)")  # bf16 emulated: far slower
    assert choose_precision("auto", "cpu", flags=set())[0] == "fp32"  # no /proc/cpuinfo: the safe choice
    assert choose_precision("auto", "cuda", cuda_bf16=True)[0] == "bf16"
    assert choose_precision("auto", "cuda", cuda_bf16=False)[0] == "fp32"
    assert choose_precision("auto", "mps")[0] == "fp32"
    for name in ("fp32", "bf16", "fp16"):  # a precision that is set is kept, whatever the CPU
        assert choose_precision(name, "cpu", flags=cpu_flags(XEON)) == (name, "train.precision")
    assert cpu_flags("Features\t: fp asimd bf16\n") == {"fp", "asimd", "bf16"}  # arm's spelling


def test_cores_from_affinity_and_cgroup_quota(tmp_path):
    assert th.usable_cores({0, 1, 2, 3, 4, 5, 6, 7}, quota=2.5) == 3
    assert th.usable_cores({0, 1}, quota=8.0) == 2
    assert th.usable_cores({3}, quota=0.2) == 1
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert th._cgroup_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert th._cgroup_quota(v2) is None
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert th._cgroup_quota(tmp_path / "v1") == 2.0
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert th._cgroup_quota(tmp_path / "v1") is None


def test_omp_num_threads_wins_then_the_setting(tmp_path):
    calls: list[int] = []
    policy = th.ThreadPolicy(3, environ={"OMP_NUM_THREADS": "1"}, folder=tmp_path, set_threads=calls.append)
    assert policy.start() == "1 thread, OMP_NUM_THREADS" and calls == [1]
    policy = th.ThreadPolicy(3, environ={}, folder=tmp_path, set_threads=calls.append)
    assert policy.start() == "3 threads, train.threads" and calls[-1] == 3
    assert not list(tmp_path.iterdir())  # a fixed count registers nothing
    with pytest.raises(ConfigError, match="OMP_NUM_THREADS: expected a whole number >= 1, got 'two'"):
        th.ThreadPolicy("auto", environ={"OMP_NUM_THREADS": "two"}, folder=tmp_path)


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from gancore.kernel.threads import Registry
    registry = Registry(Path(sys.argv[1]), set(int(c) for c in sys.argv[2].split(",")))
    assert registry.join()
    print("joined", flush=True)
    time.sleep(600)
""")


def _holder(folder, cores: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), cores], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "joined"
    return proc


def test_auto_divides_the_cores_among_live_gancore_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(th, "RECOUNT_SECONDS", 0.0)
    calls: list[int] = []
    policy = th.ThreadPolicy("auto", environ={}, folder=tmp_path, cores={0, 1, 2, 3}, quota=None,
                             set_threads=calls.append)
    assert policy.start() == "4 threads, auto: 4 cores" and calls == [4]
    first = _holder(tmp_path, "0,1")
    elsewhere = _holder(tmp_path, "6,7")  # cores this process does not use: not counted
    try:
        assert policy.recount() and policy.threads == 2 and calls[-1] == 2
        assert policy.describe() == "2 threads, auto: 4 cores shared by 2 gancore runs"
        second = _holder(tmp_path, "2,3")
        assert policy.recount() and policy.threads == 1
        second.kill()  # kill -9: its file stays, but nobody holds its lock any more
        second.wait()
        assert policy.recount() and policy.threads == 2
        assert len(list(tmp_path.glob("*.json"))) == 3  # the dead process's entry was removed
    finally:
        for proc in (first, elsewhere):
            proc.kill()
            proc.wait()
    assert policy.recount() and policy.threads == 4
    policy.close()
    assert not list(tmp_path.glob("*.json"))


def test_recounting_waits_between_counts(tmp_path):
    policy = th.ThreadPolicy("auto", environ={}, folder=tmp_path, cores={0, 1}, quota=None, set_threads=lambda n: None)
    policy.start()
    holder = _holder(tmp_path, "0")
    try:
        assert not policy.recount()  # counted just now: the next count comes RECOUNT_SECONDS later
        policy._last_count = time.monotonic() - th.RECOUNT_SECONDS - 0.01
        assert policy.recount() and policy.threads == 1
    finally:
        holder.kill()
        holder.wait()
        policy.close()


def test_the_slowdown_note_comes_once_and_a_new_thread_count_starts_afresh():
    lines: list[str] = []
    watch = th.SlowdownWatch(lines.append, factor=3.0, warmup=2, window=4, remedy="do this")
    for t in [1.0, 1.0] + [0.010] * 4 + [0.025] * 4:  # warm-up, the reference, 2.5x: not yet
        watch.add(t)
    assert not lines and watch.reference == pytest.approx(0.010)
    for t in [0.040] * 4 + [0.040] * 8:
        watch.add(t)
    assert len(lines) == 1 and "4.0x as long as this run's first ones" in lines[0] and lines[0].endswith("do this")
    watch = th.SlowdownWatch(lines.append, factor=3.0, warmup=0, window=2)
    for t in [0.01, 0.01]:
        watch.add(t)
    watch.reset()  # e.g. the policy went from 2 threads to 1: slower steps are expected
    for t in [0.04] * 4:
        watch.add(t)
    assert len(lines) == 1


def test_the_run_says_what_it_chose_and_config_json_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCORE_SHARE_DIR", str(tmp_path / "share"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    host = load_plugins()
    lines: list[str] = []
    cfg = make_config(host, "dcgan", {"train.steps": 1, "train.batch_size": 4, "variant.generator_width": 4,
                                      "variant.critic_width": 4, "log.sample_every": 0, "log.progress": False})
    from gancore.kernel.trainer import Trainer

    trainer = Trainer(host, cfg, tmp_path / "run", echo=lines.append)
    trainer.train()
    expected, why = choose_precision("auto", "cpu")
    first = next(line for line in lines if line.startswith("training "))
    assert f"(cpu; {expected}, {why}; " in first and "auto: " in first.split(";")[2], first
    assert "; malloc keeps freed memory" in first or sys.platform != "linux", first
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert saved["precision"] == expected and saved["threads"] == "auto"
    assert not list((tmp_path / "share").glob("*.json"))  # the run left the registry when it ended
    assert torch.get_num_threads() >= 1


def test_losses_stay_float32_under_bf16_autocast(tmp_path, monkeypatch):
    """Every variant's loss terms are float32 under CPU bf16 autocast (the losses cast their inputs)."""
    host = load_plugins()
    seen: dict[str, set[torch.dtype]] = {}
    original = PhaseRunner._add_terms

    def recording(self, player, out, step, share=1.0):
        seen.setdefault(current, set()).update(v.dtype for v in out.terms.values())
        return original(self, player, out, step, share)

    monkeypatch.setattr(PhaseRunner, "_add_terms", recording)
    tiny = {"train.steps": 1, "train.batch_size": 4, "train.precision": "bf16", "log.sample_every": 0,
            "log.progress": False, "data.image_size": 16}
    for current, extra in [("dcgan", {}), ("cgan", {}), ("wgan", {"variant.mode": "gp"}), ("infogan", {}),
                           ("siamese", {"variant.vec_len": 8}), ("cyclegan", {"variant.residual_blocks": 1}),
                           ("pix2pix", {}), ("vaegan", {})]:
        cfg = make_config(host, current, {**tiny, **extra})
        train(host, cfg, tmp_path / current)
    assert set(seen) == {"dcgan", "cgan", "wgan", "infogan", "siamese", "cyclegan", "pix2pix", "vaegan"}
    assert all(dtypes == {torch.float32} for dtypes in seen.values()), seen


def test_a_real_run_under_omp_num_threads_says_so(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANCORE_DISABLE_PLUGINS": "wandb"}
    out = subprocess.run([sys.executable, "-m", "gancore", "run", "dcgan", "--out", str(tmp_path / "run"),
                          "--set", "train.steps=1", "--set", "train.batch_size=4", "--set", "log.sample_every=0",
                          "--set", "log.progress=false"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "; 1 thread, OMP_NUM_THREADS" in out.stderr, out.stderr


def test_a_variant_that_does_not_hold_at_bf16_keeps_auto_at_fp32(monkeypatch):
    from gancore.kernel import precision as prec

    monkeypatch.setattr(prec, "cpu_flags", lambda cpuinfo=None: cpu_flags(EPYC))
    cpu = torch.device("cpu")
    assert prec.resolve_precision_why("auto", cpu) == ("bf16", "auto: the CPU has AVX-512-BF16 units")
    assert prec.resolve_precision_why("auto", cpu, bf16_ok=False, who="variant infogan") == (
        "fp32", "auto: variant infogan keeps fp32 (its results do not hold at bf16)")
    assert prec.resolve_precision_why("bf16", cpu, bf16_ok=False)[0] == "bf16"  # asked for: obeyed
    host = load_plugins()
    infogan = host.variants.get("infogan")
    assert infogan.capabilities(make_config(host, "infogan", {}).variant).auto_bf16 is False
    dcgan = host.variants.get("dcgan")
    assert dcgan.capabilities(make_config(host, "dcgan", {}).variant).auto_bf16 is True


def test_one_process_counts_once_however_many_trainers_it_made(tmp_path):
    """Trainers of one process run in turn (a notebook, a test session): they do not divide the cores."""
    kept = th.Registry(tmp_path, {0, 1})
    assert kept.join()
    policy = th.ThreadPolicy("auto", environ={}, folder=tmp_path, cores={0, 1}, quota=None, set_threads=lambda n: None)
    try:
        assert policy.start() == "2 threads, auto: 2 cores" and policy.registry.count() == 1
    finally:
        policy.close()
        kept.leave()


def test_the_allocator_setting(monkeypatch):
    """train.allocator: system and auto on CUDA leave malloc alone; auto and keep on the CPU keep freed
    memory where glibc is (this suite's Linux); keep without glibc is a one-line error, auto does nothing."""
    from gancore.kernel import allocator

    assert allocator.apply_allocator("system", "cpu") is None
    assert allocator.apply_allocator("auto", "cuda") is None
    if allocator._glibc() is not None:
        assert allocator.apply_allocator("auto", "cpu") == "malloc keeps freed memory"
        assert allocator.apply_allocator("keep", "cuda") == "malloc keeps freed memory"
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    monkeypatch.setattr(allocator, "_applied", False)
    assert allocator.apply_allocator("auto", "cpu") is None
    with pytest.raises(ConfigError, match=r"^train\.allocator: keep needs glibc"):
        allocator.apply_allocator("keep", "cpu")
    host = load_plugins()
    with pytest.raises(ConfigError, match="allocator"):
        make_config(host, "dcgan", {"train.allocator": "jemalloc"})
