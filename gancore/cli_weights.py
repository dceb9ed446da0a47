"""``gancore weights``: converting published extractor weights to safetensors, once."""

from __future__ import annotations

import click


@click.group()
def weights() -> None:
    """Convert published extractor weights to safetensors (gancore reads nothing else)."""


@weights.command()
@click.argument("source", metavar="FILE.pth")
@click.option("--out", required=True, metavar="FILE.safetensors", help="The converted weights.")
@click.option("--sha256", "sha256_prefix", default=None, metavar="HEX",
              help="The digest (or its first hex digits) the file must have [default: the published "
                   "pt_inception-2015-12-05-6726825d.pth's, 6726825d].")
def convert(source: str, out: str, sha256_prefix: str | None) -> None:
    """Convert the standard FID Inception weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth,
    or torch-fidelity's weights-inception-2015-12-05-6726825d.pth) to FILE.safetensors, for
    `--set eval.metrics.fid.extractor=fid-inception --set eval.metrics.fid.weights=FILE.safetensors`.
    The file's sha256 is
    checked first; its pickle is then read as data (nothing is unpickled: torch.save's zip and legacy
    layouts, dicts of tensors only; anything else is refused)."""
    from gancore.errors import ConfigError
    from gancore.metrics.fid_inception import PUBLISHED_SHA256_PREFIX, convert_weights

    prefix = (sha256_prefix or PUBLISHED_SHA256_PREFIX).lower()
    if not prefix or any(ch not in "0123456789abcdef" for ch in prefix) or len(prefix) > 64:
        raise ConfigError(f"--sha256: expected hex digits, got {sha256_prefix!r}")
    metadata = convert_weights(source, out, sha256_prefix=prefix)
    click.echo(f"wrote {out} (from {metadata['source']}, sha256 {metadata['source_sha256']})")
