"""``gancore data``: pack a data source once, inspect a pack, preview it."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def data() -> None:
    """Pack datasets into uint8 files that train with flat memory (`data.name=pack`), and inspect them."""


@data.command()
@click.argument("source")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The pack to write (.pack).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="A setting of the source, with the run config's keys (e.g. --set data.path=~/celeba "
                   "--set data.image_size=64); repeatable.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A TOML/JSON file of the source's settings (its [data] table, or the settings at top level).")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Decoding processes (default: the CPU count, at most 8).")
@click.option("--skip-bad", is_flag=True, help="Pack the readable images and list the others, instead of stopping.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def pack(source: str, out: str, sets: tuple[str, ...], config_file: str | None, workers: int | None,
         skip_bad: bool, progress: bool) -> None:
    """Decode the data source SOURCE (e.g. image-folder, digits) once into the pack OUT."""
    from gancore.app import host
    from gancore.config import apply_set, load_file, validate
    from gancore.data.packing import default_workers, pack_source
    from gancore.errors import ConfigError, PluginError

    try:
        cls = host().datasets.get(source)
    except PluginError as exc:
        raise ConfigError(f"SOURCE: {exc}") from None
    raw: dict = {}
    if config_file is not None:
        loaded = load_file(config_file)
        section = loaded["data"] if "data" in loaded else loaded
        if not isinstance(section, dict):
            raise ConfigError(f"--config {config_file}: 'data' must be a table of the source's settings, found "
                              f"{json.dumps(section)[:60]}")
        raw = dict(section)
        named = raw.pop("name", source)
        if named != source:
            raise ConfigError(f"--config {config_file}: data.name is {json.dumps(named)[:60]}, but SOURCE is "
                              f"{source!r} (pass the source the settings are for)")
    tree = {"data": raw}
    for assignment in sets:
        key = assignment.split("=", 1)[0].strip()
        if not key.startswith("data.") or key == "data.name":
            hint = "SOURCE names the source" if key == "data.name" else f"e.g. --set data.{key}=..."
            raise ConfigError(f"--set {key}: data pack takes the run config's data.* keys ({hint})")
        apply_set(tree, assignment)
    raw = tree["data"]
    settings = validate(cls.Config, raw, "data")
    target = Path(out)
    if target.exists() and not target.is_file():
        raise ConfigError(f"--out: {target} exists and is not a file")
    result = pack_source(cls(settings), target, workers=workers or default_workers(), skip_bad=skip_bad,
                         progress=progress)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for path, error in result.skipped:
        click.echo(f"skipped {path}: {error}", err=True)
    skipped = f", skipped {len(result.skipped)} unreadable" if result.skipped else ""
    click.echo(f"packed {result.count} images{skipped} into {result.path} (sha256 {result.sha256[:16]}...)")


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--verify", is_flag=True, help="Also recompute the content hash (reads the whole file).")
def info(file: str, verify: bool) -> None:
    """Print how the pack FILE was made: source, settings, arrays, count, hash."""
    from gancore.data.pack import open_pack

    pack = open_pack(file)
    for key in sorted(pack.metadata):
        value = pack.metadata[key]
        if key == "settings":
            value = json.dumps(json.loads(value), sort_keys=True)
        click.echo(f"{key}: {value}")
    for name, array in pack.arrays.items():
        click.echo(f"array {name}: {array.dtype} {list(array.shape)}")
    if verify:
        pack.verify()
        click.echo("sha256: verified")


@data.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The PNG grid to write.")
@click.option("--n", "n", type=click.IntRange(1, 1024), default=64, show_default=True, help="Images in the grid.")
def preview(file: str, out: str, n: int) -> None:
    """Draw the first N images of the pack FILE as a grid."""
    import torch

    from gancore.data import TensorData
    from gancore.data.pack import open_pack
    from gancore.errors import ConfigError
    from gancore.visualize import save_samples

    if not out.lower().endswith(".png"):
        raise ConfigError(f"--out: {out} must end in .png")
    images = open_pack(file).arrays["images"]
    save_samples(TensorData.decoded(torch.from_numpy(images[:n])), out)
    click.echo(f"wrote {min(n, len(images))} images to {out}")
