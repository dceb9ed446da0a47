"""Extractor features computed by streaming, and the real data's statistics cached on disk.

Images reach the extractor a batch at a time (samples drawn, real images decoded from a pack or from
their files, translations made, batch by batch), so evaluating 50,000 samples holds one batch of
images, never all of them; what is kept is the features (``[N, F]`` float32, which KID, precision and
recall need) and the class probabilities.

The real set's features, mean and covariance are cached under ``<cache>/stats/`` (``$GANCORE_CACHE``,
else ``~/.cache/gancore``) as safetensors, keyed as stylegan2-ada keys its dataset statistics: by the
content of the real images (a sha256 over the images as the source gives them, before decoding), the
split, their number and size, the extractor and the sha256 of its weights, the resize filter and the
quantisation. The key is written into the file and compared on every read, so a changed dataset or
extractor never reuses a stale file, and a damaged one is computed again (and said so).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gancore.files import atomic_path
from gancore.metrics.extractors import Extractor, cache_dir

STATS_FORMAT = "gancore-real-stats-v1"


@dataclass
class FeatureSet:
    """Features ``[N, F]`` and class probabilities ``[N, C]`` (float32, CPU) of one image set."""

    features: Tensor
    probs: Tensor
    _moments: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.features)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance (unbiased) of the features, in float64."""
        if self._moments is None:
            from gancore.metrics.stats import gaussian_stats

            self._moments = gaussian_stats(self.features)
        return self._moments


def extract_stream(extractor: Extractor, batches: Iterable[Tensor], total: int, *, desc: str = "",
                   progress: bool = False) -> FeatureSet:
    """Run ``extractor`` over ``batches`` of images in [-1, 1] (``total`` images in all).

    Features and probabilities fill tensors allocated once; the mean and covariance accumulate in
    float64 batch by batch (a sum and a Gram matrix, as stylegan2-ada's FeatureStats), so the end of
    a 50,000-image pass copies nothing."""
    feats = probs = None
    total_sum = gram = None
    filled = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False, disable=None)
    try:
        for batch in batches:
            f, p = extractor.run_batch(batch)
            if feats is None:
                feats = torch.empty((total, f.shape[1]), dtype=torch.float32)
                probs = torch.empty((total, p.shape[1]), dtype=torch.float32)
                total_sum = torch.zeros(f.shape[1], dtype=torch.float64)
                gram = torch.zeros((f.shape[1], f.shape[1]), dtype=torch.float64)
            if filled + len(f) > total:
                raise ValueError(f"more than the {total} images announced")
            feats[filled:filled + len(f)], probs[filled:filled + len(f)] = f, p
            f64 = f.double()
            total_sum += f64.sum(0)
            gram.addmm_(f64.T, f64)
            filled += len(f)
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    if feats is None or filled < 2:
        raise ValueError(f"features: need at least 2 images, got {filled}")
    fs = FeatureSet(feats[:filled], probs[:filled])
    mu = total_sum / filled
    sigma = (gram - filled * torch.outer(mu, mu)) / (filled - 1)
    fs._moments = (mu.numpy(), sigma.numpy())
    return fs


def content_hash(chunks: Iterable[Tensor]) -> tuple[str, int, tuple[int, ...]]:
    """sha256 over raw image chunks (their dtype, shape and bytes), with the count and one image's shape."""
    h = hashlib.sha256()
    n, shape = 0, ()
    for chunk in chunks:
        c = chunk.contiguous()
        h.update(f"{c.dtype}:{tuple(c.shape[1:])};".encode())
        h.update(c.numpy().tobytes())
        n, shape = n + len(c), tuple(c.shape[1:])
    return h.hexdigest(), n, shape


def stats_key(*, data_hash: str, n: int, shape: tuple[int, ...], dataset: str, split: str, side: str,
              extractor: Extractor, input_size: int) -> dict[str, Any]:
    """Everything the real statistics depend on; its hash names the cache file."""
    prov = extractor.provenance(input_size)
    return {"format": STATS_FORMAT, "dataset": dataset, "split": split, "side": side, "content_sha256": data_hash,
            "n": n, "shape": list(shape), "extractor": extractor.name, "extractor_sha256": extractor.sha256,
            "resize_filter": prov["resize_filter"], "quantization": prov["quantization"]}


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def stats_path(key: dict[str, Any]) -> Path:
    return cache_dir() / "stats" / f"{key['dataset']}-{key['split']}-{key_digest(key)}.safetensors"


def load_stats(key: dict[str, Any], echo: Callable[[str], None] | None = None) -> FeatureSet | None:
    """The cached statistics for ``key``, or None (missing, or damaged: then ``echo`` says so)."""
    from safetensors import safe_open

    path = stats_path(key)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            stored = json.loads((f.metadata() or {}).get("key", "null"))
            if stored != key:
                raise ValueError("its key is not this one")
            fs = FeatureSet(f.get_tensor("features"), f.get_tensor("probs"))
            mu, sigma = f.get_tensor("mu").numpy(), f.get_tensor("sigma").numpy()
        dim = fs.features.shape[1] if fs.features.dim() == 2 else -1
        if (len(fs.features) != key["n"] or len(fs.probs) != key["n"] or mu.shape != (dim,)
                or sigma.shape != (dim, dim) or not bool(torch.isfinite(fs.features).all())):
            raise ValueError("its tensors do not fit the key")
    except Exception as exc:  # a torn, foreign or tampered file: compute again
        if echo is not None:
            echo(f"real statistics cache {path}: unusable ({str(exc)[:120]}); computing them again")
        return None
    fs._moments = (mu, sigma)
    return fs


def save_stats(key: dict[str, Any], fs: FeatureSet) -> Path:
    """Write ``fs`` (features, probabilities, mean, covariance) under ``key``, atomically."""
    from safetensors.torch import save_file

    path = stats_path(key)
    mu, sigma = fs.moments()
    tensors = {"features": fs.features.contiguous(), "probs": fs.probs.contiguous(),
               "mu": torch.from_numpy(np.ascontiguousarray(mu)),
               "sigma": torch.from_numpy(np.ascontiguousarray(sigma))}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"key": json.dumps(key, sort_keys=True)})
    return path


def chunks(x: Any, size: int) -> Iterator[Any]:
    """``x[i:i + size]`` for i in 0, size, ... (tensors, memory maps, file-backed rows)."""
    for i in range(0, len(x), size):
        yield x[i:i + size]
