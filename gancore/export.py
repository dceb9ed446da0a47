"""Models that leave gancore: the Hugging Face folder layout and ONNX (``gancore export``).

``hf``: a folder with ``model.safetensors`` (one player's ``state_dict``: the generator, its EMA weights
when the run kept them), ``config.json`` (format ``gancore-export-v1``: the variant, its plugin and
version, the player, the network settings, the data spec, the latent and codes spec, the step and the
whole resolved run config) and a ``README.md`` model card with the run's last evaluation.
``gancore.load(folder)`` rebuilds the network from it. ``onnx``: the generator's forward as a graph
with a dynamic batch axis, inputs named ``z`` (noise; ``x`` for image-to-image generators), ``y``
(labels) and one input per code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancore import __version__
from gancore.errors import ConfigError
from gancore.files import atomic_path, write_text_atomic

if TYPE_CHECKING:
    from torch import nn

    from gancore.api import Model

FORMATS = ("hf", "onnx")


def export(model: Model, out: Path, *, format: str = "hf", player: str | None = None,  # noqa: A002
           plugin: str = "unknown") -> Path:
    """Export ``model`` (see the module's docstring); returns what was written.

    :param plugin: the variant's plugin distribution and version (``gancore-dcgan 0.1.0``), for the record.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format: {format!r} is not one of {', '.join(FORMATS)}")
    player = player or "generator"
    networks = model.networks
    players = [n for n in networks if n != "ema" and not n.startswith("ema_")]
    if player not in players:
        raise ConfigError(f"--player: variant {model.variant!r} has no player {player!r} "
                          f"(its players: {', '.join(players)})")
    if format == "hf":
        return export_hf(model, out, player, plugin)
    if player != "generator":
        raise ConfigError("--player: ONNX export writes the generator's forward only")
    return export_onnx(model, out)


def _module(model: Model, player: str) -> tuple[nn.Module, bool]:
    from gancore.kernel.build import ema_prefix

    average = model.networks.get(ema_prefix(player))
    return (average, True) if average is not None else (model.networks[player], False)


def _last_evaluation(run_dir: Path | None) -> list[dict[str, Any]]:
    """The newest ``eval/*.json`` of each metric in the run directory."""
    if run_dir is None or not (run_dir / "eval").is_dir():
        return []
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for path in sorted((run_dir / "eval").glob("*_step_*.json")):
        try:
            result = json.loads(path.read_text())
            name, step = str(result["metric"]), int(result["step"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged result is not worth failing an export for
        if name not in newest or step >= newest[name][0]:
            newest[name] = (step, result)
    return [result for _, result in sorted(newest.values(), key=lambda item: str(item[1]["metric"]))]


def export_hf(model: Model, out: Path, player: str, plugin: str) -> Path:
    from safetensors.torch import save_file

    from gancore.codes import codes_of, codes_to_json

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file; hf export writes a folder")
    module, ema = _module(model, player)
    built = model._built
    generator = model.networks["generator"]
    codes = codes_of(generator)
    dist, _, version = plugin.partition(" ")
    evaluation = _last_evaluation(model.run_dir)
    meta = {
        "format": "gancore-export-v1",
        "variant": model.variant,
        "plugin": {"name": dist, "version": version},
        "gancore_version": __version__,
        "player": player,
        "ema": ema,
        "step": model.step,
        "network": {"class": f"{type(module).__module__}.{type(module).__qualname__}",
                    "variant_settings": model.config.get("variant", {})},
        "data_spec": json.loads(built.variant.data.to_json()),
        "latent": {"dim": getattr(generator, "latent_dim", None)},
        "codes": codes_to_json(codes) if codes else None,
        "run_config": model.config,
        "evaluation": [{"metric": r["metric"], "step": r["step"], "values": r.get("values", {})} for r in evaluation],
    }
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    with atomic_path(out / "model.safetensors", fsync=True) as tmp:
        save_file(state, str(tmp), metadata={"format": "gancore-export-v1", "player": player})
    write_text_atomic(json.dumps(meta, indent=2) + "\n", out / "config.json")
    write_text_atomic(_model_card(model, meta, evaluation), out / "README.md")
    return out


def _model_card(model: Model, meta: dict[str, Any], evaluation: list[dict[str, Any]]) -> str:
    spec = meta["data_spec"]
    data = model.config.get("data", {})
    lines = [
        "---", "library_name: gancore", "tags:", "- gan", f"- {model.variant}", "---", "",
        f"# {model.variant} ({meta['player']}{', EMA weights' if meta['ema'] else ''})", "",
        f"Trained with gancore {__version__} ({meta['plugin']['name']} {meta['plugin']['version']}) for "
        f"{model.step} steps on `{data.get('name', '?')}`: {spec['kind']} data of shape {spec['shape']}"
        + (f", {spec['num_classes']} classes" if spec.get("num_classes") else "") + ".", "",
        "## Use", "", "```python", "import gancore", "", "model = gancore.load(\"path/to/this/folder\")",
        "x = model.sample(16, seed=0)  # [16, C, H, W] in [-1, 1]" if spec["kind"] == "image" else
        "x = model.sample(16, seed=0)  # [16, D] points", "```", "",
        "`model.safetensors` is the network's `state_dict`; `config.json` records how to rebuild it.", "",
        "## Evaluation", "",
    ]
    if not evaluation:
        lines.append("The run was not evaluated (`gancore eval RUN` before exporting records it here).")
    for result in evaluation:
        prov = result.get("provenance", {})
        values = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                           for k, v in result.get("values", {}).items())
        how = ", ".join(f"{k}: {prov[k]}" for k in ("n_samples", "n_real", "real_split", "extractor",
                                                     "extractor_sha256", "checkpoint", "seed") if k in prov)
        lines.append(f"- **{result['metric']}** (step {result['step']}): {values}" + (f" ({how})" if how else ""))
    return "\n".join(lines) + "\n"


class _Forward:
    """What the generator's ONNX graph takes: the names and example tensors of its inputs."""

    def __init__(self, model: Model) -> None:
        import torch

        from gancore.codes import codes_of

        self.generator, _ = _module(model, "generator")
        self.names: list[str] = []
        self.example: list[Any] = []
        self.conditional = model._built.variant.conditional
        self.codes = codes_of(self.generator)
        gen = torch.Generator().manual_seed(0)
        n = 2
        if getattr(self.generator, "latent_dim", None):
            self.names.append("z")
            self.example.append(self.generator.sample_latent(n, generator=gen, device="cpu"))
        else:
            spec = model._built.variant.data
            self.names.append("x")
            self.example.append(torch.rand((n, *spec.shape), generator=gen) * 2 - 1)
        if self.conditional:
            self.names.append("y")
            self.example.append(torch.zeros(n, dtype=torch.long))
        for code in self.codes:
            self.names.append(code.name)
            self.example.append(code.draw(n, generator=gen, device="cpu"))


def export_onnx(model: Model, out: Path) -> Path:
    import torch
    from torch import nn

    if out.suffix.lower() != ".onnx":
        raise ConfigError(f"--out: {out} must end in .onnx")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ConfigError("--format onnx: needs the onnx package: pip install onnx") from None
    fwd = _Forward(model)

    class Graph(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator = fwd.generator

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            rest = list(inputs[1:])
            y = rest.pop(0) if fwd.conditional else None
            if fwd.codes:
                codes = {c.name: t for c, t in zip(fwd.codes, rest, strict=True)}
                return self.generator(inputs[0], y, codes=codes)
            return self.generator(inputs[0]) if y is None else self.generator(inputs[0], y)

    graph = Graph().eval()
    axes = {name: {0: "batch"} for name in fwd.names}
    axes["samples"] = {0: "batch"}
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter, on purpose: the torch.export one needs onnxscript and gains nothing here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(graph, tuple(fwd.example), str(tmp), input_names=fwd.names, output_names=["samples"],
                          dynamic_axes=axes, dynamo=False, opset_version=17)
    return out
