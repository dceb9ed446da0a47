"""Running a built generator outside training: samples and translations, in eval mode, in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from gancore.data import TensorData
from gancore.interfaces import Batch
from gancore.kernel.build import BuiltRun

SAMPLE_CHUNK = 512
TRANSLATE_CHUNK = 64


@contextmanager
def evaluating(module: nn.Module, seed: int = 0) -> Iterator[nn.Module]:
    """``module`` in eval mode and without gradients for the block; its mode is restored after.

    The global RNG (which test-time noise such as pix2pix's kept dropout draws from) is forked and
    seeded with ``seed`` for the block: outputs repeat call after call, and drawing a progress grid
    or an evaluation never moves the training run's checkpointed stream."""
    was_training = module.training
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    module.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.random.default_generator.manual_seed(seed)
            for index in devices:
                torch.cuda.default_generators[index].manual_seed(seed)
            yield module
    finally:
        module.train(was_training)


def draw_samples(built: BuiltRun, n: int, *, rng: torch.Generator, ema: bool = True,
                 labels: Tensor | None = None, codes: dict[str, Tensor] | None = None,
                 chunk: int = SAMPLE_CHUNK) -> Tensor:
    """``n`` samples in data space (float32, on the CPU) from the EMA generator when ``ema`` and
    one is kept, else the trained one, through :meth:`gancore.Variant.sample`, ``chunk`` at a time.
    ``labels`` (``[n]``) for conditional variants; every class equally often when None. ``codes``
    (name -> ``n`` values) fixes some of a generator's structured codes; the others are drawn."""
    out = list(iter_samples(built, n, rng=rng, ema=ema, labels=labels, codes=codes, chunk=chunk))
    return torch.cat(out) if out else torch.empty(0)


def iter_samples(built: BuiltRun, n: int, *, rng: torch.Generator, ema: bool = True,
                 labels: Tensor | None = None, codes: dict[str, Tensor] | None = None,
                 chunk: int = SAMPLE_CHUNK) -> Iterator[Tensor]:
    """:func:`draw_samples` ``chunk`` at a time (the same samples, never all held at once)."""
    from gancore.labels import balanced_labels

    variant = built.variant
    if labels is None and variant.conditional:
        labels = balanced_labels(n, variant.data.num_classes)
    with evaluating(built.generator(ema)) as gen:
        for i in range(0, n, chunk):
            part = None if labels is None else labels[i:i + chunk]
            # codes= only when some are fixed: a variant's own sample() written before codes existed still works
            extra = {} if codes is None else {"codes": {k: v[i:i + chunk].to(built.device) for k, v in codes.items()}}
            yield _finite(variant.sample(gen, min(chunk, n - i), rng=rng, device=built.device,
                                         labels=part, **extra).float().cpu())


def _finite(x: Tensor) -> Tensor:
    if not bool(torch.isfinite(x).all()):
        from gancore.errors import CheckpointError

        raise CheckpointError("the generator's outputs hold NaN or infinite values: these weights are not usable "
                              "(resume or sample from an earlier checkpoint)")
    return x


def translate_chunks(built: BuiltRun, x: Tensor, direction: str, *, ema: bool = True,
                     chunk: int = TRANSLATE_CHUNK) -> Tensor:
    """Images ``x`` (``[N, C, H, W]`` in [-1, 1]) translated by :meth:`gancore.Variant.translate`,
    ``chunk`` at a time, in eval mode; float32 on the CPU. The module it is handed is the variant's
    :meth:`~gancore.Variant.translator` of the networks, the EMA generator in place when ``ema``."""
    out = []
    translator = built.variant.translator(built.networks(ema))
    with evaluating(translator) as gen:
        for i in range(0, len(x), chunk):
            out.append(built.variant.translate(gen, x[i:i + chunk].to(built.device), direction).float().cpu())
    return _finite(torch.cat(out)) if out else torch.empty(0)


def fixed_batch(data: TensorData, n: int, device: torch.device) -> Batch:
    """The first ``n`` samples of each domain: the inputs of every progress grid."""

    def head(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else TensorData.decoded(t[:n]).to(device)

    def images(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else data.centred(t[:n]).to(device)

    return Batch(x=images(data.x), y=head(data.y), x_b=images(data.x_b), y_b=head(data.y_b))
