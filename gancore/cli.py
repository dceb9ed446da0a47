"""The ``gancore`` command line (click).

Every :class:`GancoreError` is printed as one line on stderr with its exit code (2 for usage,
config, plugin and checkpoint errors; 1 when training fails); never a traceback for a user's
mistake.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from gancore import __version__, app
from gancore.app import host
from gancore.errors import ConfigError, GancoreError, TrainingError, describe_os_error
from gancore.plugins import PluginHost


def reset_host() -> None:
    """Forget the loaded plugins and their commands (tests change what is installed)."""
    app.reset_host()
    for name in list(cli.commands):
        if name not in CORE_COMMANDS:
            del cli.commands[name]
    cli._plugins_added = False  # type: ignore[attr-defined]


class GancoreGroup(click.Group):
    """Adds plugin commands lazily and renders gancore's errors as one line."""

    def _plugin_commands(self) -> None:
        if not getattr(self, "_plugins_added", False):
            self._plugins_added = True
            host().register_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """The error boundary: gancore's own errors and the file system's (``OSError``: permission,
        disk full, not a folder, ...) become one line and an exit code (2; the run command turns one
        raised once training started into a TrainingError, exit 1); ``--debug`` or
        ``GANCORE_DEBUG=1`` shows their tracebacks instead. Anything else is a bug and keeps its
        traceback."""
        try:
            return super().invoke(ctx)
        except GancoreError as exc:
            if _debug(ctx):
                raise
            _report(f"gancore: error: {exc}")
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if _debug(ctx):
                raise
            _report(f"gancore: error: {describe_os_error(exc)}")
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("gancore: interrupted", err=True)
            ctx.exit(130)


def _report(line: str) -> None:
    """One error line on stderr; under torch.distributed only rank 0 says it (every rank fails alike)."""
    if int(os.environ.get("RANK", "0") or 0) == 0:
        click.echo(line, err=True)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("GANCORE_DEBUG", "") not in ("", "0")


@click.group(cls=GancoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gancore")
@click.option("--debug", is_flag=True, help="Show the Python traceback of errors (also GANCORE_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train, sample and inspect GANs. Variants, losses, regularizers and data sources are
    plugins: `gancore plugins` lists what is installed."""
    ctx.obj = {"debug": debug}


# -- run ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("variant")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="A TOML, JSON or YAML config file.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override one setting, e.g. --set train.steps=500 (repeatable; values are "
                   "parsed as JSON where they parse, else taken as strings).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory [default: runs/VARIANT-YYYYmmdd-HHMMSS].")
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its latest checkpoint (its config.json is the "
                   "base; --config and --set apply on top, e.g. more train.steps).")
@click.option("--preset", metavar="NAME",
              help="One of the variant's named bundles of settings (e.g. larger images and networks for a "
                   "GPU; `gancore config VARIANT` lists them), under --config and --set.")
@click.option("--dry-run", is_flag=True, help="Resolve and print the config, then stop.")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Processes on this machine (torch.distributed through torchrun; one per GPU, or gloo "
                   "on the CPU). train.batch_size is per process.")
def run(variant: str, config_file: str | None, sets: tuple[str, ...], out: str | None,
        resume: bool, preset: str | None, dry_run: bool, nproc: int) -> None:
    """Train VARIANT (e.g. `gancore run dcgan`) and write a run directory: config.json,
    metrics.jsonl, samples/step_*.png and checkpoints/step_*.safetensors."""
    from gancore.config import build_raw, check_variant_sets, preset_settings, resolve

    if resume and out is None:
        raise click.UsageError("--resume needs --out RUN_DIR")
    check_variant_sets(variant, sets)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and out is None:
        raise click.UsageError("--out is required under torch.distributed (every process must name the same run)")
    if nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not dry_run:
        from gancore.kernel.distributed import launch
        from gancore.kernel.precision import resolve_device

        # one clear error here, not one per process
        cfg = resolve(host(), build_raw(variant, config_file, preset=preset_settings(host(), variant, preset)), sets)
        resolve_device(cfg.train.device)  # train.device=cuda without CUDA: one line, before any process starts
        out = out or str(Path("runs") / f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}")
        args = [variant, "--out", out, *(["--config", config_file] if config_file else []),
                *(["--preset", preset] if preset else []),
                *[a for s in sets for a in ("--set", s)], *(["--resume"] if resume else [])]
        launch(nproc, args)
        return
    from gancore.api import prepare_run

    chosen = preset_settings(host(), variant, preset)
    cfg = prepare_run(variant, out=out or "", config=config_file, sets=sets, preset=preset, resume=resume)
    if chosen and os.environ.get("RANK", "0") == "0":
        click.echo(f"preset {preset}: {' '.join(f'{k}={json.dumps(v)}' for k, v in chosen.items())}", err=True)
    if dry_run:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return
    from gancore.kernel import Trainer

    run_dir = Path(out) if out else Path("runs") / f"{variant}-{time.strftime('%Y%m%d-%H%M%S')}"
    trainer = Trainer(host(), cfg, run_dir, resume=resume, echo=lambda m: click.echo(m, err=True))
    try:
        result = trainer.train()
    except OSError as exc:  # once training started: exit 1, like every failure after that point
        raise TrainingError(f"{describe_os_error(exc)}; training stopped at step {trainer.step}") from None
    if os.environ.get("RANK", "0") != "0":
        return
    click.echo(
        (f"stopped early ({result.stopped}): " if result.stopped else "done: ")
        + f"{result.step} steps in {result.seconds:.1f} s; "
        f"samples: {result.samples}; checkpoint: {result.checkpoint}"
    )


# -- plugins and registries --------------------------------------------------------------------


@cli.command()
def plugins() -> None:
    """List installed plugins, where they come from and what they provide (or why they broke)."""
    for rec in host().records:
        provides = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in rec.provides.items())
        line = f"{rec.name:<21} {rec.status:<9} {rec.source}"
        if provides:
            line += f"  [{provides}]"
        if rec.error:
            line += f"\n{'':<21} error: {rec.error}"
        if rec.heavy_imports:
            line += (f"\n{'':<21} note: imports {', '.join(rec.heavy_imports)} when loaded, which slows every "
                     "gancore command (docs/plugins.md: importing torch lazily)")
        click.echo(line)


@cli.command(name="list")
@click.argument("kind", required=False,
                type=click.Choice(["variants", "losses", "regularizers", "datasets", "metrics", "augments"]))
def list_(kind: str | None) -> None:
    """List registered names: variants, losses, regularizers, datasets, metrics, augments (or all)."""
    h = host()
    for k in [kind] if kind else list(PluginHost.registry_kinds):
        registry = h.registry(k)
        if not kind:
            click.echo(f"{k}:")
        for name in registry:
            doc = (registry.get(name).__doc__ or "").strip().splitlines()
            click.echo(f"  {name:<18} {doc[0] if doc else ''}  ({registry.source(name)})")


@cli.command()
@click.argument("variant")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Overrides to apply first (e.g. a variant's mode changes its defaults).")
@click.option("--preset", metavar="NAME", help="Show the settings with this preset applied.")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved config as JSON.")
def config(variant: str, sets: tuple[str, ...], preset: str | None, as_json: bool) -> None:
    """Print VARIANT's settings with their defaults and descriptions, and its presets."""
    from gancore.confdoc import describe
    from gancore.config import build_raw, preset_settings, resolve

    cfg = resolve(host(), build_raw(variant, preset=preset_settings(host(), variant, preset)), sets)
    if as_json:
        click.echo(json.dumps(cfg.to_dict(), indent=2))
        return
    click.echo(describe(cfg))
    presets = cfg.variant_cls.presets
    if presets:
        click.echo("\n# presets (gancore run VARIANT --preset NAME; --config and --set apply on top):")
        for name, p in presets.items():
            click.echo(f"#   {name}: {p.doc}")
            click.echo(f"#     {' '.join(f'{k}={json.dumps(v)}' for k, v in p.settings.items())}")


# -- sampling ----------------------------------------------------------------------------------


@cli.command()
@click.argument("source", metavar="RUN_DIR_OR_CKPT")
@click.option("--n", "n", type=click.IntRange(1, 100000), default=64, show_default=True,
              help="Number of samples.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .png (grid), .npy or .safetensors (raw samples in data space).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Seed of the noise.")
@click.option("--ema/--no-ema", default=True, show_default=True,
              help="Use the generator's moving average when the run kept one.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--label", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Conditional runs: generate only class K (default: every class equally often).")
@click.option("--grid-by-class", is_flag=True,
              help="Conditional runs: N // classes samples of each class, one class per grid row.")
@click.option("--code", type=click.IntRange(0, 2**31 - 1), default=None,
              help="Runs with codes (infogan): fix the categorical code to K; the other codes and the "
                   "noise are drawn as in training.")
def sample(source: str, n: int, out: str, seed: int, ema: bool, device: str, label: int | None,
           grid_by_class: bool, code: int | None) -> None:
    """Generate N samples from a run directory's latest checkpoint or a checkpoint file."""
    from gancore.inference import draw, load_model, sample_codes, sample_labels, write_samples

    suffix = Path(out).suffix.lower()
    if suffix not in (".png", ".npy", ".safetensors"):
        raise ConfigError(f"--out: {out} must end in .png, .npy or .safetensors")
    if label is not None and grid_by_class:
        raise click.UsageError("--label and --grid-by-class exclude each other")
    model, _ = load_model(host(), source, device)
    labels = sample_labels(model, n, label, grid_by_class)
    count = n if labels is None else len(labels)
    x, used = draw(model, count, seed=seed, ema=ema, labels=labels, codes=sample_codes(model, count, code))
    nrow = count // model.variant.data.num_classes if grid_by_class else None
    write_samples(x, out, labels=labels, nrow=nrow)
    click.echo(f"wrote {count} samples {list(x.shape)} ({used} generator) to {out}")


@cli.command()
@click.argument("source", metavar="RUN_DIR_OR_CKPT")
@click.option("--input", "input_path", required=True,
              help="A folder of images, one image, or a .npy/.safetensors tensor [N, C, H, W] in [-1, 1].")
@click.option("--out", required=True,
              help="A folder (for a folder in), an image file, or a .npy/.safetensors file (for tensors in).")
@click.option("--direction", type=click.Choice(["a2b", "b2a"]), default="a2b", show_default=True,
              help="Translate domain A to B, or B to A.")
@click.option("--ema/--no-ema", default=True, show_default=True,
              help="Use the generators' moving average when the run kept one.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def translate(source: str, input_path: str, out: str, direction: str, ema: bool, device: str) -> None:
    """Translate images with an image-to-image run (cyclegan): same file names out."""
    from gancore.inference import load_model, translate_path

    model, _ = load_model(host(), source, device)
    count = translate_path(model, input_path, out, direction, ema)
    click.echo(f"translated {count} images {direction} to {out}")


# -- evaluation and reports --------------------------------------------------------------------


def _format(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@cli.command(name="eval")
@click.argument("source", metavar="RUN_DIR_OR_CKPT")
@click.option("--metric", "metrics", multiple=True, metavar="NAME",
              help="A metric (repeatable); default: the metrics for the run's task "
                   "(fid for images, label-accuracy for conditional runs, modes for 2-D mixtures, "
                   "preservation and reconstruction for translation). `gancore list metrics` lists them.")
@click.option("--n", "n", type=click.IntRange(2, 1000000), default=1000, show_default=True,
              help="Samples drawn from the generator, streamed through the extractor a batch at a time "
                   "(papers' FID: 50000).")
@click.option("--set", "sets", multiple=True, metavar="eval.metrics.METRIC.KEY=VALUE",
              help="A metric's setting, with the run config's keys: e.g. --set "
                   "eval.metrics.fid.extractor=fid-inception --set eval.metrics.fid.weights=FILE.safetensors "
                   "(the standard FID network: `gancore weights convert`).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="Seed of the noise.")
@click.option("--ema/--no-ema", default=True, show_default=True,
              help="Use the generator's moving average when the run kept one.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def eval_(source: str, metrics: tuple[str, ...], n: int, sets: tuple[str, ...], seed: int, ema: bool,
          device: str) -> None:
    """Evaluate a run's latest checkpoint (or a checkpoint file): print a table and write
    RUN_DIR/eval/<metric>_step_XXXXXXX.json with the values and how they were computed."""
    from gancore.evaluation import evaluate, write_results

    results, run_dir = evaluate(host(), source, list(metrics), list(sets), n=n, seed=seed, device=device, ema=ema,
                                echo=lambda m: click.echo(m, err=True), progress=True)
    paths = write_results(run_dir, results)
    for result, path in zip(results, paths, strict=True):
        prov = result["provenance"]
        click.echo(f"{result['metric']} (step {result['step']}, {prov.get('n_samples', n)} samples"
                   + (f", {prov['extractor']} {prov['extractor_sha256'][:12]}" if "extractor" in prov else "")
                   + f") -> {path}")
        for key, value in result["values"].items():
            click.echo(f"  {key:<28} {_format(value)}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Output file [default: RUN_DIR/report.html].")
def report(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML report of a run: loss and metric curves, the sample grids over
    time, evaluation results with provenance, the resolved config and the checkpoints."""
    from gancore.report import write_report

    path = write_report(Path(run_dir), Path(out) if out else None)
    click.echo(f"wrote {path}")


@cli.command(name="export")
@click.argument("source", metavar="RUN_DIR_OR_CKPT")
@click.option("--format", "fmt", type=click.Choice(["hf", "onnx"]), default="hf", show_default=True,
              help="hf: a folder of model.safetensors, config.json and a README.md model card (gancore.load "
                   "reads it); onnx: the generator's forward as an ONNX graph (FILE.onnx).")
@click.option("--out", required=True, help="The folder (hf) or the .onnx file to write.")
@click.option("--player", default=None, metavar="NAME",
              help="hf: the network to export [default: the generator, its EMA weights when the run kept them].")
def export_(source: str, fmt: str, out: str, player: str | None) -> None:
    """Export a run's generator (or another player) for use outside gancore."""
    from gancore.api import load

    path = load(source).export(out, format=fmt, player=player)
    click.echo(f"wrote {path}")


from gancore.cli_data import data  # noqa: E402
from gancore.cli_sweep import sweep  # noqa: E402
from gancore.cli_weights import weights  # noqa: E402

cli.add_command(data)
cli.add_command(sweep)
cli.add_command(weights)
CORE_COMMANDS = frozenset(cli.commands)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="gancore")


if __name__ == "__main__":
    sys.exit(main())
