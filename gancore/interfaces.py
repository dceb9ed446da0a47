"""The abstract interfaces that plugins implement.

A *variant* owns its game: it builds its players' networks and says what each player minimises,
as named loss terms. The kernel owns the mechanics: autocast, backward, gradient scaling,
optimizer steps, regularizers, EMA, checkpoints. A variant never calls ``backward()`` or
``optimizer.step()``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from gancore.modules import Critic, Generator


#: The largest integer any setting takes (a seed, a count): what torch's generators and C's int64 hold.
MAX_INT = 2**63 - 1


class Settings(BaseModel):
    """Base of every plugin's settings model: unknown keys are errors, values are validated; floats must be
    finite (``NaN`` and ``Infinity`` are refused for every float setting) and integers within
    ``±MAX_INT`` even where a field declares no bound of its own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _within_int64(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
            raise ValueError(f"must be between -(2**63 - 1) and 2**63 - 1, got a number of {len(str(abs(value)))} "
                             "digits")
        return value


class NoSettings(Settings):
    """Settings of a plugin that takes none."""


class NetworkWidths(Settings):
    """Base of a variant's settings for the usual two widths: ``variant.generator_width`` (the
    generator's last hidden layer, ngf) and ``variant.critic_width`` (the critic's first, ndf).
    Subclass it instead of declaring them again; :func:`gancore.gpu_preset` sets both."""

    generator_width: int = Field(32, ge=4, le=1024, description="Channels of the generator's last hidden layer (ngf).")
    critic_width: int = Field(32, ge=4, le=1024, description="Channels of the critic's first layer (ndf).")


class PenaltySettings(Settings):
    """Base of a penalty regularizer's settings: its weight and lazy interval.

    The kernel adds ``weight * every * penalty`` to the critic's loss on every ``every``-th
    critic update (lazy regularization: the weight is scaled by the interval so the penalty's
    average strength does not change). Subclass it to add the penalty's own settings.
    """

    weight: float = Field(1.0, ge=0.0, description="Weight of the penalty in the critic's loss.")
    every: int = Field(1, ge=1, le=10**6, description="Apply on every k-th critic update, weighted by k.")


class Configurable:
    """A plugin class with a settings model ``Config``; ``self.config`` holds a validated instance."""

    Config: ClassVar[type[Settings]] = NoSettings

    def __init__(self, config: Settings | None = None) -> None:
        self.config = config if config is not None else self.Config()


class Loss(Configurable, ABC):
    """An adversarial loss: a pure pair of functions of the critic's outputs.

    Both return a scalar to minimise. Implementations compute in float32 whatever the dtype of
    the outputs, so they are safe under autocast.
    """

    name: ClassVar[str]
    generator_uses_real: ClassVar[bool] = False
    """True when :meth:`generator_loss` needs ``real_out`` (relativistic losses): variants
    then pass the critic's output on a real batch, and skip that forward pass otherwise."""

    @abstractmethod
    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """What the critic minimises, given its outputs on real and on generated samples."""

    @abstractmethod
    def generator_loss(self, fake_out: Tensor, real_out: Tensor | None = None) -> Tensor:
        """What the generator minimises, given the critic's outputs on generated samples."""


@dataclass
class PenaltyInput:
    """What a gradient penalty needs: the critic as a function of its input, and the samples.

    ``critic`` maps a batch of inputs to the critic's outputs (labels already bound).
    ``name`` tells several critics apart in the logs (``critic/<penalty>_<name>``) when a step
    returns more than one input, as CycleGAN does for D_A and D_B.
    """

    critic: Callable[[Tensor], Tensor]
    real: Tensor
    fake: Tensor
    name: str = "critic"


class Regularizer(Configurable, ABC):
    """A constraint or penalty on the critic, applied by the kernel for any variant.

    Three optional parts: :meth:`attach` rewrites the critic at build time (spectral norm),
    :meth:`penalty` adds a term to the critic's loss (gradient penalty, R1), and
    :meth:`after_step` constrains the critic after each optimizer step (weight clipping).
    """

    name: ClassVar[str]
    needs_double_backward: ClassVar[bool] = False
    """True when :meth:`penalty` differentiates through a gradient of the critic (gradient
    penalty, R1): the kernel then keeps the critic out of ``torch.compile``, which cannot
    differentiate twice, and names the penalty when the critic's double backward fails."""

    @property
    def every(self) -> int:
        """Apply :meth:`penalty` on every ``every``-th critic step (lazy regularization):
        ``config.every`` when the settings are :class:`PenaltySettings`, else 1."""
        return self.config.every if isinstance(self.config, PenaltySettings) else 1

    @property
    def weight(self) -> float:
        """Weight of the penalty in the critic's loss: ``config.weight`` when the settings are
        :class:`PenaltySettings`, else 1."""
        return self.config.weight if isinstance(self.config, PenaltySettings) else 1.0

    def attach(self, critic: nn.Module) -> nn.Module:
        """Return the critic to train (possibly rewritten). Called once, before training."""
        return critic

    def penalty(self, inputs: PenaltyInput, grad_fn: GradFn) -> Tensor | None:
        """Return the (unweighted) penalty for one critic, or None when this regularizer has none.

        ``grad_fn(outputs, inputs)`` returns d(sum outputs)/d(inputs) with a graph, correctly
        scaled and unscaled under fp16: always use it rather than ``torch.autograd.grad``.
        """
        return None

    def after_step(self, critic: nn.Module) -> None:  # noqa: B027 (optional hook)
        """Constrain the critic after each of its optimizer steps."""


GradFn = Callable[["Tensor", "Tensor"], "Tensor"]


class AugmentSettings(Settings):
    """Base of an augmentation's settings (``augment.*``)."""

    penalties: bool = Field(
        True, description="Penalties (R1, gradient penalty) take the critic on augmented images too, their "
        "gradient flowing back through the augmentation to the images (stylegan2-ada's R1); false: on the "
        "images as they are.")


class Augment(Configurable, ABC):
    """A differentiable augmentation of every image a critic sees (DiffAugment, ADA), chosen with
    ``augment.name``. The kernel applies it to the critic's image input, real and generated, in every
    phase (the generator's included): the gradient flows through it to the generator.

    :meth:`apply` must be differentiable (twice, when a penalty sees it) and draw only from ``rng``: the
    kernel's own checkpointed stream, so a resumed run is bitwise the same. An adaptive augmentation
    (ADA) overrides :meth:`observe` and :meth:`adjust`, and keeps what a resume needs in :meth:`state`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Settings]] = AugmentSettings

    def setup(self, device: torch.device, channels: int) -> None:  # noqa: B027 (optional hook)
        """Allocate device state (ADA's probability) before training; ``channels`` is the data's channels
        per image. Raise :class:`gancore.ConfigError` for images the augmentation cannot take."""

    @abstractmethod
    def apply(self, x: Tensor, rng: torch.Generator, groups: int) -> Tensor:
        """Augment a batch ``x`` of shape ``[N, C, H, W]``, each sample independently. ``groups`` is the
        number of images stacked along the channels (2 for pix2pix's pair of inputs, each of ``C / groups``
        channels): geometric changes move them together, colour changes act on each image's channels."""

    @property
    def adaptive(self) -> bool:
        """True when the augmentation adjusts itself from the critic's outputs on real images."""
        return False

    def observe(self, real_out: Tensor) -> None:  # noqa: B027 (optional hook)
        """The critic's outputs on a real batch (every critic loss computed in the critic's phase)."""

    def adjust(self, critic_updates: int, images: int, mean: Callable[[Tensor], Tensor]) -> None:  # noqa: B027
        """Called after each critic update: ``images`` per update (every process's), ``mean`` averages a
        tensor over the processes of a distributed run."""

    def state(self) -> dict[str, Tensor]:
        """Tensors a resume needs (checkpointed as ``augment.<key>``)."""
        return {}

    def load_state(self, tensors: dict[str, Tensor]) -> None:  # noqa: B027 (optional hook)
        """Restore what :meth:`state` returned."""

    def log_values(self) -> dict[str, Tensor]:
        """Scalars to log as ``augment/<key>`` at each logging step (ADA's ``p``)."""
        return {}


@dataclass
class Batch:
    """One batch of training data: samples ``x`` and, for labelled data, labels ``y``."""

    x: Tensor
    y: Tensor | None = None
    x_b: Tensor | None = None
    """A batch of the second domain (two-domain data only): row i is the partner of ``x[i]`` when the
    data are paired (``DataSpec.paired``), an independent draw otherwise."""
    y_b: Tensor | None = None


@dataclass
class StepOutput:
    """What a variant returns for one phase.

    ``terms`` are the named losses the player minimises (summed by the kernel; each is logged
    as ``<player>/<name>``). ``stats`` are logged but not optimised (detach them).
    ``penalties`` are the inputs on which the configured regularizers' penalties are taken
    (critic phase only).
    """

    terms: dict[str, Tensor]
    stats: dict[str, Tensor] = field(default_factory=dict)
    penalties: list[PenaltyInput] = field(default_factory=list)


#: Names a network of :class:`Networks` cannot take: they are the checkpoint's other sections.
RESERVED_NETWORK_NAMES = frozenset({"ema", "optim", "scaler", "rng", "sampler", "state", "augment"})


@dataclass
class Networks:
    """A variant's trained networks, one module per player.

    ``generator`` always exists; ``critic`` is None for a model without one (a plain VAE);
    ``others`` holds further players with optimizers of their own (``optim.<name>`` settings),
    updated by phases the variant declares (:meth:`gancore.Variant.phases`). A player that owns
    several networks (CycleGAN's two generators) uses an ``nn.ModuleDict``; each player's
    optimizer covers all of its trainable parameters.

    ``state`` holds what the variant keeps that no optimizer trains: modules of buffers
    (CycleGAN's history pools of generated images). They move to the device with the networks, are
    checkpointed as ``state_<name>.*`` and restored on resume, and are no player: no phase, no
    optimizer, no DDP or compiled view, not loaded by ``train.init_from``.
    """

    generator: nn.Module
    critic: nn.Module | None = None
    others: dict[str, nn.Module] = field(default_factory=dict)
    state: dict[str, nn.Module] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for field_name, names in (("others", self.others), ("state", self.state)):
            for name in names:
                if (name in ("generator", "critic") or name in RESERVED_NETWORK_NAMES or name.startswith("ema_")
                        or name.startswith("state_") or not name.isidentifier()):
                    raise ValueError(f"Networks.{field_name}: {name!r} cannot name a network "
                                     "(reserved or not an identifier)")

    def get(self, player: str) -> nn.Module:
        """The network of ``player`` (``generator``, ``critic`` or a name in ``others``)."""
        if player == "generator":
            return self.generator
        if player == "critic" and self.critic is not None:
            return self.critic
        if player in self.others:
            return self.others[player]
        raise KeyError(f"no network for player {player!r}; this model has {', '.join(self.names())}")

    def names(self) -> list[str]:
        """The players that have a network, generator first."""
        return ["generator", *(["critic"] if self.critic is not None else []), *self.others]

    def items(self) -> list[tuple[str, nn.Module]]:
        return [(name, self.get(name)) for name in self.names()]

    def replace(self, **modules: nn.Module) -> Networks:
        """A copy with some players' modules swapped (the kernel's DDP or compiled views)."""
        mapping = dict(self.items())
        mapping.update(modules)
        others = {k: v for k, v in mapping.items() if k not in ("generator", "critic")}
        return Networks(generator=mapping["generator"], critic=mapping.get("critic"), others=others,
                        state=self.state)


@dataclass
class StepContext:
    """Handed to a variant's step functions by the kernel."""

    step: int
    device: torch.device
    rng: torch.Generator
    """Seeded generator on the training device, distinct per process under torch.distributed."""
    rank: int = 0
    world_size: int = 1
    shared_rng: torch.Generator | None = None
    """The same stream on every process (``rng`` itself in a single process)."""
    carry: dict[str, Any] = field(default_factory=dict)
    """What one phase leaves for a later phase of the same iteration (a generated batch and its
    graph, with :attr:`Phase.keep_graph`): one dict per micro-batch under ``train.accumulate``,
    the same for every phase of the iteration, emptied when the iteration ends."""

    def latent(self, generator: nn.Module, n: int) -> Tensor:
        """``n`` noise vectors for this process's batch: draw latent noise through this.

        Under torch.distributed every process draws the whole global batch (``n x world_size``)
        from the shared stream and keeps its own rows, so N processes with batch n see exactly the
        noise of one process with batch N x n; in one process it is
        ``generator.sample_latent(n, generator=rng)``.
        """
        rng = self.shared_rng if self.shared_rng is not None else self.rng
        z = generator.sample_latent(n * self.world_size, generator=rng, device=self.device)
        return z[self.rank * n:(self.rank + 1) * n] if self.world_size > 1 else z

    def codes(self, generator: nn.Module, n: int) -> dict[str, Tensor]:
        """The generator's structured codes (``generator.codes``) for this process's batch of ``n``,
        drawn like :meth:`latent` (the whole global batch from the shared stream, this process's
        rows kept): a dict name -> ``[n]`` class indices or ``[n, size]`` values; empty for a
        generator without codes. Draw the noise first, then the codes."""
        from gancore.codes import codes_of, draw_codes

        codes = codes_of(generator)
        if not codes:
            return {}
        rng = self.shared_rng if self.shared_rng is not None else self.rng
        drawn = draw_codes(codes, n * self.world_size, generator=rng, device=self.device)
        if self.world_size > 1:
            drawn = {k: v[self.rank * n:(self.rank + 1) * n] for k, v in drawn.items()}
        return drawn


@dataclass(frozen=True)
class DataSpec:
    """What the variant needs to know about the data to build its networks."""

    kind: str
    """``"image"`` (``[N, C, H, W]`` in [-1, 1]) or ``"vector"`` (``[N, D]``)."""
    shape: tuple[int, ...]
    """Shape of one sample."""
    num_classes: int = 0
    """Number of label classes; 0 for unlabelled data."""
    domains: int = 1
    """2 for two-domain data (batches then carry ``x_b``)."""
    paired: bool = False
    """True when ``x_b[i]`` is the partner of ``x[i]`` (aligned pairs, pix2pix); False: unpaired domains."""

    def to_json(self) -> str:
        """The spec as the JSON string a checkpoint stores."""
        return json.dumps({"kind": self.kind, "shape": list(self.shape), "num_classes": self.num_classes,
                           "domains": self.domains, "paired": self.paired})

    @classmethod
    def from_json(cls, text: str) -> DataSpec:
        """The spec from :meth:`to_json`'s string; ValueError names what is wrong."""
        try:
            raw = json.loads(text)
            kind, shape = raw["kind"], tuple(int(v) for v in raw["shape"])
            spec = cls(kind=str(kind), shape=shape, num_classes=int(raw.get("num_classes", 0)),
                       domains=int(raw.get("domains", 1)), paired=bool(raw.get("paired", False)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"data_spec is not a data spec ({type(exc).__name__}: {exc})") from None
        if spec.kind not in ("image", "vector") or not spec.shape or min(spec.shape) < 1:
            raise ValueError(f"data_spec is not a data spec (kind {spec.kind!r}, shape {list(spec.shape)})")
        return spec




def __getattr__(name: str) -> Any:
    """``Generator`` and ``Critic`` (``nn.Module`` subclasses, so they need torch) load on first use."""
    if name in ("Generator", "Critic"):
        from gancore import modules

        return getattr(modules, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Batch", "Configurable", "Critic", "DataSpec", "GradFn", "Generator", "Loss", "Networks",
    "NoSettings", "PenaltyInput", "PenaltySettings", "Regularizer", "Settings", "StepContext", "StepOutput",
]
