"""Building a run's objects from a resolved config: variant, networks, regularizers, optimizers."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gancore.config import OptimizerSettings, RunConfig
from gancore.data import TensorData
from gancore.errors import ConfigError, PluginError
from gancore.interfaces import DataSpec, Loss, Networks, Regularizer
from gancore.variant import CRITIC, InitReport, Variant


@dataclass
class BuiltRun:
    """What a run's config builds: the variant, its networks on a device, the regularizers and
    (when enabled) the generator's EMA. Training, ``sample``, ``translate`` and ``eval`` all start
    from one."""

    variant: Variant
    nets: Networks
    regularizers: list[Regularizer]
    device: torch.device
    emas: dict[str, nn.Module] = field(default_factory=dict)
    """Player -> the moving average of its weights (``train.ema``; the players the variant's
    :meth:`~gancore.Variant.capabilities` name in ``ema_players``)."""
    channels_last: bool = False
    init_reports: list[InitReport] = field(default_factory=list)
    """What the variant's data-dependent :meth:`~gancore.Variant.initialize` reported."""
    config: RunConfig | None = None
    """The resolved config it was built from."""

    @property
    def ema(self) -> nn.Module | None:
        """The generator's moving average, when one is kept."""
        return self.emas.get("generator")

    def generator(self, ema: bool = True) -> nn.Module:
        """The EMA generator when ``ema`` and one is kept, else the trained one."""
        return self.ema if ema and self.ema is not None else self.nets.generator

    def networks(self, ema: bool = True) -> Networks:
        """The run's networks, with each averaged player's EMA in its place when ``ema``."""
        return self.nets.replace(**self.emas) if ema and self.emas else self.nets


def ema_prefix(player: str) -> str:
    """The checkpoint prefix of ``player``'s moving average: ``ema`` for the generator's."""
    return "ema" if player == "generator" else f"ema_{player}"


def build_run(cfg: RunConfig, spec: DataSpec, device: torch.device, data: TensorData | None = None) -> BuiltRun:
    """Seed, build the variant's networks, attach regularizers, move to ``device``.

    With ``data`` (a fresh training run) the variant's data-dependent ``initialize`` runs on the
    new networks first; without it (resume, inference) the checkpoint supplies that state."""
    if cfg.variant_cls.conditional and spec.num_classes == 0:
        raise ConfigError(
            f"data.name: variant {cfg.variant_cls.name!r} is conditional and needs labelled "
            f"data, but {cfg.data_cls.name!r} has no labels"
        )
    loss: Loss = cfg.loss_cls(cfg.loss)
    variant: Variant = cfg.variant_cls(cfg.variant, spec, loss)
    torch.manual_seed(cfg.train.seed)
    nets = variant.build()
    if not isinstance(nets, Networks):
        raise PluginError(f"variant {cfg.variant_cls.name!r}: build() returned {type(nets).__name__}, "
                          "expected gancore.Networks")
    reports = list(variant.initialize(nets, data)) if data is not None else []
    for report in reports:
        if not isinstance(report, InitReport):
            raise PluginError(f"variant {cfg.variant_cls.name!r}: initialize() must return a list of "
                              f"gancore.InitReport, got {type(report).__name__}")
    regularizers: list[Regularizer] = [cls(settings) for cls, settings in cfg.regularizers]
    if regularizers and nets.critic is None:
        names = ", ".join(cls.name for cls, _ in cfg.regularizers)
        raise ConfigError(f"regularizers: {names} act on a critic, and variant {cfg.variant_cls.name!r} has none")
    for reg in regularizers:
        nets.critic = reg.attach(nets.critic)
    memory_format = torch.channels_last if use_channels_last(cfg, spec, device, nets) else torch.preserve_format
    for net in [net for _, net in nets.items()] + list(nets.state.values()):
        net.to(device=device, memory_format=memory_format)
    emas: dict[str, nn.Module] = {}
    if cfg.train.keeps_ema:
        players = nets.names()
        for player in cfg.variant_cls.capabilities(cfg.variant).ema_players:
            if player not in players:
                raise PluginError(f"variant {cfg.variant_cls.name!r}: capabilities().ema_players names {player!r}, "
                                  f"which its networks lack (it has {', '.join(players)})")
            emas[player] = copy.deepcopy(nets.get(player)).eval().requires_grad_(False)
    return BuiltRun(variant=variant, nets=nets, regularizers=regularizers, emas=emas, device=device,
                    channels_last=memory_format == torch.channels_last, init_reports=reports, config=cfg)


#: Layers whose CPU kernels are slower in channels-last (measured: CycleGAN's instance norm and
#: reflection padding lose 7% on a 2-core AVX2 CPU while DCGAN and WGAN-GP stacks gain 16-17%).
CPU_CHANNELS_LAST_SLOW = (nn.InstanceNorm2d, nn.ReflectionPad2d)


def use_channels_last(cfg: RunConfig, spec: DataSpec, device: torch.device, nets: Networks | None = None) -> bool:
    """The resolved ``train.channels_last``. auto: on for image data on CUDA; on the CPU too,
    unless the networks use layers whose CPU kernels lose in channels-last."""
    setting = cfg.train.channels_last
    if setting != "auto":
        return setting == "on"
    if spec.kind != "image":
        return False
    if device.type == "cuda":
        return True
    if nets is None:
        return False
    modules = [m for _, net in nets.items() for m in net.modules()]
    return not any(isinstance(m, CPU_CHANNELS_LAST_SLOW) for m in modules)


def make_optimizer(settings: OptimizerSettings, module: nn.Module, fused: str = "off",
                   device: torch.device | None = None) -> torch.optim.Optimizer:
    """The configured optimizer over ``module``'s trainable parameters. ``fused`` (on/off/auto)
    picks the fused Adam/AdamW kernels: auto uses them on CUDA and on the CPU, where they were
    measured to gain 0-10% (benchmarks/README.md)."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters")
    s = settings
    kind = device.type if device is not None else params[0].device.type
    extra = {"fused": True} if fused == "on" or (fused == "auto" and kind in ("cuda", "cpu")) else {}
    if s.name == "adam":
        return torch.optim.Adam(params, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay, **extra)
    if s.name == "adamw":
        return torch.optim.AdamW(params, lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay, **extra)
    if s.name == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=s.lr, eps=s.eps, weight_decay=s.weight_decay, momentum=s.momentum
        )
    return torch.optim.SGD(params, lr=s.lr, weight_decay=s.weight_decay, momentum=s.momentum)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """Move the average towards the model's weights; copy buffers (BatchNorm statistics)."""
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, list(model.parameters()), 1.0 - decay)
    for mine, theirs in zip(ema.buffers(), model.buffers(), strict=True):
        mine.copy_(theirs)


def check_against_variant(cfg: RunConfig, built: BuiltRun, phases: list[Any], *, distributed: bool = False) -> None:
    """The config and the variant agree, before training starts and before the run directory is written:
    the phases train players the networks have, every ``optim.<player>`` names one, and ``eval.metrics``
    apply to the run's task."""
    from gancore.metrics import task_of

    name = cfg.variant_cls.name
    players = built.nets.names()
    unknown = sorted({name for p in phases for name in p.players} - set(players))
    if unknown:
        raise ConfigError(f"variant {name!r}: its phases train {', '.join(unknown)}, "
                          f"which its networks lack (it has {', '.join(players)})")
    kept = [p for p in phases if p.keep_graph]
    if kept and distributed:  # the kept graph ran through the raw module: DDP would not average its gradients
        raise ConfigError(f"variant {name!r}: its {kept[0].player} phase keeps a graph through "
                          f"{', '.join(kept[0].keep_graph)} for a later phase (e.g. variant.reuse_fake), "
                          "which runs in one process only; drop --nproc or that setting")
    for player in cfg.optim.players():
        if player not in players and player != CRITIC:  # optim.critic is in every config
            raise ConfigError(f"optim.{player}: variant {name!r} has no player {player!r} "
                              f"(its players: {', '.join(players)})")
    task = task_of(built.variant)
    for i, (cls, _) in enumerate(cfg.eval_metrics):
        if task not in cls.tasks:
            raise ConfigError(f"eval.metrics.{i}: metric {cls.name!r} applies to {', '.join(cls.tasks)} runs, "
                              f"not to this {task} run")


def compiled(module: nn.Module) -> nn.Module:
    """``torch.compile`` each network of a player; attribute access (``sample_latent``) passes
    through to the original module."""
    from gancore.kernel.distributed import per_network

    return per_network(module, torch.compile)


def phase_views(built: BuiltRun, updated_players: list[str], *, distributed: bool, device: torch.device,
                compile_networks: bool) -> dict[str, Networks]:
    """The networks each player's phase runs: under torch.distributed the network being updated is
    wrapped in DDP (the others run raw: frozen, nothing to synchronise); with ``train.compile`` every
    network is compiled but the one a penalty differentiates twice (compile has no double backward).
    Checkpoints and EMA always use the raw modules."""
    from gancore.kernel.distributed import wrap

    nets = built.nets
    double_backward = any(r.needs_double_backward for r in built.regularizers)
    raw: dict[str, nn.Module] = dict(nets.items())
    updated = dict(raw)
    if distributed:
        updated = {name: wrap(net, device) for name, net in raw.items()}
    if compile_networks:
        eager = {CRITIC} if double_backward else set()  # regularizers act on the critic
        for name in raw:
            if name in eager:
                continue
            was_raw = updated[name] is raw[name]
            updated[name] = compiled(updated[name])
            raw[name] = updated[name] if was_raw else compiled(raw[name])
    return {player: nets.replace(**{**raw, player: updated[player]}) for player in updated_players}
