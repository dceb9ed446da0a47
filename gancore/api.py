"""gancore from Python: :func:`train`, :func:`load` and the :class:`Model` they return.

The same kernel, run directory, checkpoints and errors as ``gancore run`` / ``sample`` / ``translate``
/ ``eval`` (errors are :class:`gancore.GancoreError`\\ s with the CLI's one line as their message),
on the process-wide plugin host of :mod:`gancore.app`. See docs/python.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gancore import app
from gancore.errors import CheckpointError, ConfigError, TrainingError, describe_os_error

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from gancore.kernel.build import BuiltRun

__all__ = ["Model", "load", "train", "set_assignments", "prepare_run"]

EXPORT_FORMAT = "gancore-export-v1"


def set_assignments(values: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``{"train.steps": 300}`` (or ``["train.steps=300"]``) as the ``key=value`` strings ``--set`` takes."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        out = []
        for key, value in values.items():
            if not isinstance(key, str) or not key:
                raise ConfigError(f"set: keys must be dotted strings like 'train.steps', got {key!r}")
            out.append(f"{key}={value if isinstance(value, str) else json.dumps(value)}")
        return out
    if isinstance(values, str):
        raise ConfigError("set: a dict of dotted keys to values, e.g. {'train.steps': 300}")
    return [str(v) for v in values]


def _config_layer(config: Mapping[str, Any] | str | Path | None) -> tuple[dict[str, Any] | None, str | Path | None]:
    if config is None:
        return None, None
    if isinstance(config, Mapping):
        return dict(config), None
    if isinstance(config, (str, Path)):
        return None, config
    raise ConfigError(f"config: a dict or a TOML/JSON/YAML file path, got {type(config).__name__}")


def prepare_run(variant: str, *, out: str | Path, config: Mapping[str, Any] | str | Path | None = None,
                sets: Sequence[str] = (), preset: str | None = None, resume: bool = False) -> Any:
    """The resolved config of a run into ``out``: the run's own ``config.json`` under ``resume``, then the
    preset, the config (a dict or a file) and ``sets``: what ``gancore run`` builds before training."""
    from gancore.config import build_raw, check_variant_sets, deep_merge, preset_settings, resolve

    check_variant_sets(variant, list(sets))
    base = None
    if resume:
        cfg_path = Path(out) / "config.json"
        from gancore.files import require_regular

        require_regular(cfg_path, "config.json")
        if not cfg_path.is_file():
            raise ConfigError(f"--resume: {out} holds no run to resume (no config.json)")
        try:
            base = json.loads(cfg_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise ConfigError(f"--resume: {cfg_path} is not valid JSON ({exc}); it holds the run's resolved "
                              "config: repair it, or start a new run") from None
        if not isinstance(base, dict):
            raise ConfigError(f"--resume: {cfg_path} must hold a JSON object, got {type(base).__name__}")
    layer, config_file = _config_layer(config)
    host = app.host()
    chosen = preset_settings(host, variant, preset)
    if base is not None:
        _check_resume_sets(base, sets)
    raw = build_raw(variant, config_file, base=base, preset=chosen)
    if layer is not None:
        raw = build_raw(variant, base=deep_merge(raw, layer))
    cfg = resolve(host, raw, list(sets))
    if base is not None:
        from gancore.plugins import CORE_SECTIONS
        from gancore.resume_rules import check_resume

        check_resume(resolve(host, build_raw(variant, base=base), []).to_dict(), cfg.to_dict(), CORE_SECTIONS)
    return cfg


def _check_resume_sets(base: dict[str, Any], sets: Sequence[str]) -> None:
    """A ``--set`` of a setting that cannot change on resume, refused before it is resolved (a new
    ``loss.name`` would otherwise fail on the old loss's settings, naming the wrong key)."""
    import copy

    from gancore.dotted import apply_set
    from gancore.plugins import CORE_SECTIONS
    from gancore.resume_rules import check_resume

    changed = copy.deepcopy(base)
    try:
        for assignment in sets:
            apply_set(changed, assignment)
    except ConfigError:
        return  # resolving reports it
    check_resume(base, changed, CORE_SECTIONS)


def train(variant: str, *, out: str | Path, config: Mapping[str, Any] | str | Path | None = None,
          set: Mapping[str, Any] | Sequence[str] | None = None, data: Any = None, resume: bool = False,  # noqa: A002
          progress: bool = True, preset: str | None = None) -> Model:
    """Train ``variant`` into the run directory ``out`` (as ``gancore run``) and return the trained model.

    :param config: a dict of settings, or a TOML/JSON/YAML file.
    :param set: dotted keys to values, exactly as ``--set`` takes them (``{"train.steps": 300}``).
    :param data: a map-style ``torch.utils.data.Dataset`` (items: a ``[C, H, W]`` image tensor, float in
        [-1, 1] or uint8, or a PIL image, or ``(image, label)``), a tensor or a numpy array. The run
        records ``data.name = torch-dataset``; resume it by passing the same ``data`` again.
    :param resume: continue the run in ``out`` from its latest checkpoint.
    :param progress: show the progress bar.
    """
    from gancore.data import torch_dataset
    from gancore.kernel import Trainer

    sets = set_assignments(set)
    if data is not None:
        chosen = [s.split("=", 1)[0] for s in sets if s.split("=", 1)[0] in ("data.name", "data.factory")]
        if chosen:
            raise ConfigError(f"{chosen[0]}: give the dataset as data= or as {chosen[0]}, not both")
        if not resume:
            sets = ["data.name=torch-dataset", *sets]
        torch_dataset.provide(data)
    if not progress:
        sets.append("log.progress=false")
    try:
        cfg = prepare_run(variant, out=out, config=config, sets=sets, preset=preset, resume=resume)
        if data is not None and (cfg.data_cls.name != "torch-dataset" or cfg.data.factory is not None):
            raise ConfigError(f"data: the run in {out} trains on data.name={cfg.data_cls.name!r}, not on a dataset "
                              "handed to gancore.train")
        trainer = Trainer(app.host(), cfg, Path(out), resume=resume)
        try:
            result = trainer.train()
        except OSError as exc:
            raise TrainingError(f"{describe_os_error(exc)}; training stopped at step {trainer.step}") from None
    except OSError as exc:
        raise ConfigError(describe_os_error(exc)) from None
    finally:
        torch_dataset.forget()
    return load(result.checkpoint or out)


def load(path: str | Path, *, device: str | None = None) -> Model:
    """A run directory (its latest checkpoint), a checkpoint file or an exported folder, as a :class:`Model`."""
    from gancore.inference import load_model

    path = Path(path)
    device = device or "cpu"
    if path.is_dir() and (path / "model.safetensors").is_file() and (path / "config.json").is_file():
        return _load_export(path, device)
    built, ckpt = load_model(app.host(), path, device)
    return Model(built, step=ckpt.step, source=ckpt.path, run_dir=ckpt.path.parent.parent)


class Model:
    """A trained run's networks, ready to sample, translate, evaluate and export.

    ``generator`` is the EMA generator when the run kept one; ``networks`` maps every player's name to
    its module (and ``"ema"`` to the EMA generator). Every network is in eval mode (BatchNorm uses its
    running statistics, dropout is off), as ``gancore sample`` uses them.
    """

    def __init__(self, built: BuiltRun, *, step: int, source: Path, run_dir: Path | None,
                 exported_player: str | None = None) -> None:
        for _, net in built.nets.items():
            net.eval()
        self._built = built
        self.step = step
        """The training step of the weights."""
        self.source = source
        """The checkpoint (or exported folder) the weights came from."""
        self.run_dir = run_dir
        self._exported_player = exported_player

    # -- what it is ------------------------------------------------------------------------------
    @property
    def variant(self) -> str:
        """The variant's name (``dcgan``, ``cyclegan``, ...)."""
        return self._built.variant.name

    @property
    def config(self) -> dict[str, Any]:
        """The run's resolved config, as ``config.json`` holds it."""
        assert self._built.config is not None
        return self._built.config.to_dict()

    @property
    def generator(self) -> nn.Module:
        """The generator (the EMA weights when the run has them)."""
        self._need("generator")
        return self._built.generator(ema=True)

    @property
    def networks(self) -> dict[str, nn.Module]:
        """Every player's module by name, and each moving average the run kept (``ema`` for the
        generator's, ``ema_<player>`` for another player's)."""
        from gancore.kernel.state import network_sections

        return {k: v for k, v in network_sections(self._built).items() if not k.startswith("state_")}

    @property
    def device(self) -> torch.device:
        return self._built.device

    def _need(self, player: str) -> None:
        if self._exported_player is not None and self._exported_player != player:
            raise ConfigError(f"{self.source}: this export holds the {self._exported_player!r} network only, "
                              f"not the {player}")

    # -- using it --------------------------------------------------------------------------------
    def sample(self, n: int, *, seed: int | None = None, labels: Any = None, codes: Mapping[str, Any] | None = None,
               ema: bool = True) -> Tensor:
        """``n`` samples in data space on the CPU: ``[n, C, H, W]`` in [-1, 1], or ``[n, D]`` points.

        :param seed: makes the draw repeatable, and equal to ``gancore sample --seed``'s; ``None``: a fresh seed.
        :param labels: conditional runs: one class for all (an int) or one per sample (a sequence or tensor);
            ``None``: every class equally often.
        :param codes: generators with codes (InfoGAN): fixed values by code name, an int (a categorical
            code's class) or a tensor per sample; the other codes are drawn as in training.
        """
        import torch

        from gancore.inference import draw, sample_labels
        from gancore.labels import check_labels

        self._need("generator")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"n: a positive number of samples, got {n!r}")
        if seed is None:
            seed = int.from_bytes(os.urandom(7), "big")
        variant = self._built.variant
        if labels is None or isinstance(labels, int):
            y = sample_labels(self._built, n, labels)
        else:
            if not variant.conditional:
                raise ConfigError(f"labels: variant {variant.name!r} is not conditional")
            y = torch.as_tensor(labels, dtype=torch.long).flatten()
            if len(y) != n:
                raise ConfigError(f"labels: {len(y)} labels for {n} samples")
            y = check_labels(y, variant.data.num_classes, "labels")
        fixed = self._codes(n, codes)
        x, _ = draw(self._built, n, seed=seed, ema=ema, labels=y, codes=fixed)
        return x.cpu()

    def _codes(self, n: int, codes: Mapping[str, Any] | None) -> dict[str, Tensor] | None:
        import torch

        from gancore.codes import codes_of

        if not codes:
            return None
        known = {c.name: c for c in codes_of(self._built.nets.generator)}
        out = {}
        for name, value in codes.items():
            spec = known.get(name)
            if spec is None:
                raise ConfigError(f"codes: the generator has no code {name!r} (its codes: "
                                  f"{', '.join(known) or 'none'})")
            if spec.kind == "categorical":
                t = torch.full((n,), value, dtype=torch.long) if isinstance(value, int) else \
                    torch.as_tensor(value, dtype=torch.long).flatten()
                if len(t) != n or bool(((t < 0) | (t >= spec.size)).any()):
                    raise ConfigError(f"codes: {name!r} takes {n} classes in 0..{spec.size - 1}")
            else:
                t = torch.as_tensor(value, dtype=torch.float32)
                t = t.expand(n, spec.size).clone() if t.dim() <= 1 and t.numel() in (1, spec.size) else t
                if tuple(t.shape) != (n, spec.size):
                    raise ConfigError(f"codes: {name!r} takes values of shape [{n}, {spec.size}], got {list(t.shape)}")
            out[name] = t
        return out

    def translate(self, x: Tensor, direction: str = "a2b", *, ema: bool = True) -> Tensor:
        """Images ``x`` (``[N, C, H, W]`` in [-1, 1]) translated by the run (``a2b`` or ``b2a``), on the CPU."""
        from gancore.inference import translate_images

        return translate_images(self._built, x, direction, ema).cpu()

    def evaluate(self, metrics: str | Sequence[str] = (), *, n: int | None = None, seed: int = 0, ema: bool = True,
                 data: Any = None, **settings: Any) -> list[dict[str, Any]]:
        """Compute ``metrics`` (default: the task's) and return what ``gancore eval`` stores, one dict each.

        :param data: the real data of a run trained on a Python object (``gancore.train(data=...)``).
        :param settings: the metrics' own settings, by metric: ``fid={"extractor": "fid-inception"}``.
        """
        from gancore.data import torch_dataset
        from gancore.evaluation import evaluate_built

        names = [metrics] if isinstance(metrics, str) else list(metrics)
        if data is not None:
            torch_dataset.provide(data)
        try:
            return evaluate_built(app.host(), self._built, step=self.step, metrics=names, sets=[], n=n or 1000,
                                  settings=settings,
                                  seed=seed, ema=ema, echo=lambda _m: None, checkpoint=self.source.name)
        finally:
            torch_dataset.forget()

    def export(self, out: str | Path, *, format: str = "hf", player: str | None = None) -> Path:  # noqa: A002
        """Write the model for use outside gancore (``gancore export``): ``hf`` (a folder) or ``onnx`` (a file)."""
        from gancore import export

        variants = app.host().variants
        plugin = variants.source(self.variant) if self.variant in variants else "unknown"
        return export.export(self, Path(out), format=format, player=player, plugin=plugin)

    def __repr__(self) -> str:
        return f"<gancore.Model {self.variant} step {self.step} from {self.source}>"


def _load_export(folder: Path, device: str) -> Model:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from gancore.config import resolve
    from gancore.data import DataSpec
    from gancore.inference import check_codes_match
    from gancore.kernel.build import build_run
    from gancore.kernel.precision import resolve_device

    try:
        meta = json.loads((folder / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise CheckpointError(f"{folder / 'config.json'}: not a gancore export (format {EXPORT_FORMAT!r} expected)")
    try:
        spec = DataSpec.from_json(json.dumps(meta["data_spec"]))
        player, run_config, step = str(meta["player"]), meta["run_config"], int(meta["step"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / 'config.json'}: {exc}") from None
    try:
        cfg = resolve(app.host(), run_config, stored_spec=spec)
    except ConfigError as exc:
        raise CheckpointError(f"{folder}: its config does not resolve here: {exc}") from None
    built = build_run(cfg, spec, resolve_device(device, "device"))
    try:
        tensors = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{folder / 'model.safetensors'}: not a readable safetensors file ({exc})") from None
    module = built.nets.get(player)
    _load_state(module, tensors, folder / "model.safetensors", player)
    if player in built.emas:  # an export holds the averaged weights: the average starts from them
        built.emas[player].load_state_dict(module.state_dict())
    check_codes_match(meta.get("codes"), built, folder / "config.json")
    return Model(built, step=step, source=folder, run_dir=None, exported_player=player)


def _load_state(module: nn.Module, tensors: dict[str, Tensor], path: Path, player: str) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        raise CheckpointError(f"{path}: the {player!r} weights do not fit the network the config builds "
                              f"(missing {missing[:3]}, unexpected {extra[:3]})")
    for key, want in expected.items():
        got = tensors[key]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise CheckpointError(f"{path}: tensor {key!r} is {got.dtype} {list(got.shape)}, the network holds "
                                  f"{want.dtype} {list(want.shape)}")
    module.load_state_dict(tensors, strict=True)
