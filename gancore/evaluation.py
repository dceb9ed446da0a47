"""Running metrics on a run: the context metrics draw from, and results with provenance.

``evaluate`` is what ``gancore eval`` and ``eval.every`` call. Every result carries the common
provenance (metric, checkpoint step, dataset and the split of the real data, number of samples,
seed, gancore and torch versions) next to what the metric itself records (extractor and hash,
image size, resize filter).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from gancore.config import RunConfig
from gancore.data import TensorData
from gancore.errors import ConfigError
from gancore.files import write_text_atomic
from gancore.interfaces import DataSpec
from gancore.kernel.build import BuiltRun
from gancore.kernel.drawing import draw_samples, translate_chunks
from gancore.metrics import task_of
from gancore.metrics.features import FeatureSet
from gancore.plugins import PluginHost


@dataclass
class EvalContext:
    """The runner's :class:`~gancore.metrics.MetricContext`: what a metric may use of one run. Samples,
    real data and extractor outputs are cached, so several metrics in one evaluation share one draw
    and one pass of the extractor."""

    host: PluginHost
    built: BuiltRun
    cfg: RunConfig
    step: int
    n: int = 1000
    seed: int = 0
    ema: bool = True
    progress: bool = False
    """Progress bars (on a terminal) while features are extracted."""
    echo: Callable[[str], None] | None = None
    """Where notes go (a real-statistics cache that had to be recomputed)."""
    batch: int = 64
    """Images per batch through the extractor: what evaluation holds of the images at a time."""
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str:
        return task_of(self.built.variant)

    @property
    def spec(self) -> DataSpec:
        return self.built.variant.data

    @property
    def device(self) -> torch.device:
        return self.built.device

    @property
    def dataset(self) -> str:
        return self.cfg.data_cls.name

    def generator(self) -> torch.nn.Module:
        return self.built.generator(self.ema)

    def samples(self, n: int | None = None, labels: Tensor | None = None) -> Tensor:
        """``n`` samples (default ``self.n``) from the generator (EMA if any), on the CPU.

        Conditional runs draw every class equally often unless ``labels`` are given; the labels
        used are in :meth:`sample_labels`.
        """
        from gancore.labels import balanced_labels

        n = n or self.n
        if self.task == "translate":
            raise ConfigError("metric: this run translates images; it has no samples from noise")
        if labels is None and self.built.variant.conditional:
            labels = balanced_labels(n, self.spec.num_classes)
        key = ("samples", n, None if labels is None else labels.numpy().tobytes())
        if key not in self._cache:
            rng = torch.Generator(device=self.built.device).manual_seed(self.seed)
            self._cache[key] = (draw_samples(self.built, n, rng=rng, ema=self.ema, labels=labels), labels)
        return self._cache[key][0]

    def sample_labels(self, n: int | None = None) -> Tensor:
        from gancore.labels import balanced_labels

        return balanced_labels(n or self.n, self.spec.num_classes)

    def real(self, split: str = "test") -> tuple[TensorData, str]:
        """The run's data source with ``split`` when it has one (else all of it), and the split used;
        images decoded to [-1, 1] (all of them: :meth:`features` streams instead)."""
        key = ("real", split)
        if key not in self._cache:
            data, used = self._stored(split)
            if data.encoded or data.crop_size:  # the metrics compare images in [-1, 1] of the networks' side
                data = dataclasses.replace(data, x=data.centred(data.x), x_b=data.centred(data.x_b), crop_size=None)
            self._cache[key] = (data, used)
        return self._cache[key]

    def _stored(self, split: str) -> tuple[TensorData, str]:
        """The data source's images as stored (uint8 memory maps, file-backed rows), not decoded."""
        key = ("stored", split)
        if key not in self._cache:
            settings = self.cfg.data
            used = str(getattr(settings, "split", "all"))
            if "split" in type(settings).model_fields:
                try:  # the source's own split when it does not offer this one (unpaired has no "all")
                    settings = type(settings).model_validate({**settings.model_dump(), "split": split})
                    used = split
                except ValidationError:
                    pass
            self._cache[key] = (self.cfg.data_cls(settings).load(), used)
        return self._cache[key]

    def images(self, split: str = "test") -> tuple[Tensor, Tensor, str]:
        """(generated, real, real split) images of the task, the same way for every task:
        samples vs real data, or translations A -> B of the real A images vs the real B images."""
        real, used = self.real(split)
        if self.task == "translate":
            key = ("translated", used)
            if key not in self._cache:
                self._cache[key] = self.translate(real.x, "a2b")
            return self._cache[key], real.x_b, used
        return self.samples(), real.x, used

    def translate(self, x: Tensor, direction: str = "a2b") -> Tensor:
        """Images ``x`` translated by the run's generator(s) (EMA if any), on the CPU."""
        return translate_chunks(self.built, x, direction, ema=self.ema, chunk=256)

    def forget_generated(self) -> None:
        """Drop what depends on the generator's weights (samples, translations, their features);
        keep the real data and its features. Called between evaluations during training."""
        self._cache = {k: v for k, v in self._cache.items()
                       if k[0] in ("real", "stored", "real-stats") or (k[0] == "streamed" and k[1] == "real")
                       or (k[0] == "features" and str(k[-1]).startswith("real-"))}

    def features(self, extractor: Any, which: str, split: str = "test") -> FeatureSet:
        """Extractor features of the task's generated (``which="fake"``) or real (``"real"``) images,
        streamed a batch at a time: samples (or translations of the real A images of ``split``) vs the
        real images of ``split`` (B for translation). The real set's come from the disk cache when its
        key matches (:mod:`gancore.metrics.features`); :meth:`real_stats` says which file."""
        from gancore.metrics.features import chunks, extract_stream

        data, used = self._stored(split)
        ck = ("streamed", which, extractor.name, extractor.sha256, extractor.quantize, self.task, used)
        if ck in self._cache:
            return self._cache[ck]
        translating = self.task == "translate"
        if which == "real":
            fs = self._real_features(extractor, data, used)
        elif translating:
            fs = extract_stream(extractor, (translate_chunks(self.built, data.centred(c), "a2b", ema=self.ema)
                                            for c in chunks(data.x, self.batch)),
                                len(data.x), desc="translations", progress=self.progress)
        else:
            from gancore.kernel.drawing import iter_samples

            rng = torch.Generator(device=self.built.device).manual_seed(self.seed)
            labels = self.sample_labels() if self.built.variant.conditional else None
            fs = extract_stream(extractor, iter_samples(self.built, self.n, rng=rng, ema=self.ema, labels=labels,
                                                        chunk=self.batch),
                                self.n, desc="samples", progress=self.progress)
        self._cache[ck] = fs
        return fs

    def _real_features(self, extractor: Any, data: TensorData, used: str) -> FeatureSet:
        from gancore.metrics.features import (
            chunks,
            content_hash,
            extract_stream,
            key_digest,
            load_stats,
            save_stats,
            stats_key,
            stats_path,
        )

        rows = data.x_b if self.task == "translate" else data.x
        if rows is None:
            raise ConfigError(f"metric: data source {self.cfg.data_cls.name!r} has no real images to compare with")
        digest, n, shape = content_hash(chunks(rows, 1024))
        side = data.crop_size or shape[-1]
        key = stats_key(data_hash=digest, n=n, shape=shape, dataset=self.cfg.data_cls.name, split=used,
                        side="b" if self.task == "translate" else "a", extractor=extractor, input_size=side)
        if data.crop_size:
            key["centre_crop"] = data.crop_size
        fs = load_stats(key, self.echo)
        hit = fs is not None
        if fs is None:
            fs = extract_stream(extractor, (data.centred(c) for c in chunks(rows, self.batch)), n,
                                desc="real images", progress=self.progress)
            save_stats(key, fs)
        self._cache[("real-stats", extractor.name, extractor.sha256, extractor.quantize, used)] = {
            "real_stats_cache": str(stats_path(key)), "real_stats_key": {**key, "digest": key_digest(key)},
            "real_stats_reused": hit, "real_content_sha256": digest, "real_split": used}
        return fs

    def real_stats(self, extractor: Any, split: str) -> dict[str, Any]:
        """Where the real statistics of :meth:`features` came from (the cache file, reused or written,
        its key) and the split they are of."""
        _, used = self._stored(split)
        return self._cache.get(("real-stats", extractor.name, extractor.sha256, extractor.quantize, used), {})

    def extract(self, extractor: Any, key: str, x: Tensor) -> tuple[Tensor, Tensor]:
        """Extractor outputs for ``x``, cached under ``key`` (e.g. "fake", "real-test")."""
        ck = ("features", extractor.name, extractor.sha256, key)
        if ck not in self._cache:
            self._cache[ck] = extractor.run(x)
        return self._cache[ck]


def default_metrics(host: PluginHost, task: str) -> list[str]:
    return [name for name in host.metrics.names() if task in host.metrics.get(name).default_for]


def run_metrics(ctx: EvalContext, metrics: list[tuple[type, Any]], *,
                skip: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Compute each metric and wrap it with the common provenance.

    With ``skip`` (used for the default metrics, which the user did not name), a metric that
    cannot run on this run (a one-way translator has no reconstruction) is reported through
    ``skip`` and left out; otherwise its error stops the evaluation.
    """
    import gancore

    results = []
    for cls, settings in metrics:
        if ctx.task not in cls.tasks:
            raise ConfigError(f"metric {cls.name}: applies to {', '.join(cls.tasks)} runs, "
                              f"not to this {ctx.task} run")
        started = time.perf_counter()
        try:
            values = cls(settings).compute(ctx)
        except ConfigError as exc:
            if skip is None:
                raise
            skip(f"skipped {cls.name}: {exc}")
            continue
        from gancore.metrics import PROVENANCE_KEYS

        provenance = {k: values.pop(k) for k in list(values) if k in PROVENANCE_KEYS}
        provenance.update({
            "metric": cls.name, "settings": settings.model_dump(mode="json"), "step": ctx.step,
            "dataset": ctx.cfg.data_cls.name, "data_settings": ctx.cfg.data.model_dump(mode="json"),
            "task": ctx.task, "seed": ctx.seed,
            "generator": "ema" if ctx.ema and ctx.built.ema is not None else "raw",
            "gancore": gancore.__version__, "torch": torch.__version__,
            "seconds": round(time.perf_counter() - started, 2),
        })
        results.append({"metric": cls.name, "step": ctx.step, "values": values, "provenance": provenance})
    return results


def resolve_metrics(host: PluginHost, names: list[str], sets: list[str], task: str,
                    settings: Mapping[str, Any] | None = None) -> list[tuple[type, Any]]:
    """Metric classes and settings from ``--metric`` names and ``--set eval.metrics.<metric>.key=value``
    (the run config's keys: ``eval.metrics.<i>.key`` works too), then ``settings`` (metric name -> its
    settings, as data: ``{"kid": {"subset_size": 100}}``)."""
    from gancore.config import _plugin_section, apply_set

    names = names or default_metrics(host, task)
    if not names:
        raise ConfigError(f"--metric: no default metric for a {task} run; name one "
                          f"({', '.join(host.metrics.names())})")
    tree: dict[str, Any] = {"eval": {"metrics": [{"name": name} for name in dict.fromkeys(names)]}}
    for assignment in sets:
        key = assignment.split("=", 1)[0].strip()
        parts = key.split(".")
        if len(parts) < 4 or parts[:2] != ["eval", "metrics"]:
            example = f"eval.metrics.{key}" if parts[0] in names else f"eval.metrics.{names[0]}.KEY"
            raise ConfigError(f"--set {key}: gancore eval takes the run config's keys, "
                              f"eval.metrics.<metric>.<key> (e.g. --set {example}=...)")
        apply_set(tree, assignment)
    sections = {section["name"]: section for section in tree["eval"]["metrics"]}
    for name, values in (settings or {}).items():
        if name not in sections or not isinstance(values, Mapping):
            raise ConfigError(f"{name}=: expected the settings of one of the metrics ({', '.join(sections)}) "
                              "as a dict, e.g. kid={'subset_size': 100}")
        sections[name].update(values)
    return [_plugin_section(host.metrics, section, f"eval.metrics.{section['name']}")
            for section in tree["eval"]["metrics"]]


def write_results(run_dir: Path, results: list[dict[str, Any]]) -> list[Path]:
    """``RUN/eval/<metric>_step_XXXXXXX.json`` per result, written atomically."""
    out_dir = run_dir / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for result in results:
        path = out_dir / f"{result['metric']}_step_{result['step']:07d}.json"
        write_text_atomic(json.dumps(result, indent=2) + "\n", path)
        paths.append(path)
    return paths


def evaluate(host: PluginHost, source: str | Path, metrics: list[str], sets: list[str], *, n: int = 1000,
             seed: int = 0, device: str = "cpu", ema: bool = True, echo: Callable[[str], None] = print,
             progress: bool = False) -> tuple[list[dict[str, Any]], Path]:
    """Load a checkpoint (or a run's latest), compute ``metrics`` (default: the task's); returns
    results and the run directory."""
    from gancore.inference import load_model

    built, ckpt = load_model(host, source, device)
    results = evaluate_built(host, built, step=ckpt.step, metrics=metrics, sets=sets, n=n, seed=seed, ema=ema,
                             echo=echo, progress=progress, checkpoint=ckpt.path.name)
    return results, ckpt.path.parent.parent


def evaluate_built(host: PluginHost, built: BuiltRun, *, step: int, metrics: list[str], sets: list[str],
                   n: int = 1000, seed: int = 0, ema: bool = True, echo: Callable[[str], None] = print,
                   progress: bool = False, checkpoint: str = "",
                   settings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Compute ``metrics`` (default: the task's) on networks already loaded (``gancore.Model.evaluate``)."""
    assert built.config is not None
    ctx = EvalContext(host=host, built=built, cfg=built.config, step=step, n=n, seed=seed, ema=ema,
                      progress=progress, echo=echo)
    chosen = resolve_metrics(host, metrics, sets, ctx.task, settings)
    results = run_metrics(ctx, chosen, skip=None if metrics else echo)
    for r in results:
        r["provenance"]["checkpoint"] = checkpoint
    return results
