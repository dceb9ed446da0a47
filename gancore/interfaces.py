"""The abstract interfaces that plugins implement.

A *variant* owns its game: it builds its players' networks and says what each player minimises,
as named loss terms. The kernel owns the mechanics: autocast, backward, gradient scaling,
optimizer steps, regularizers, EMA, checkpoints. A variant never calls ``backward()`` or
``optimizer.step()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

if TYPE_CHECKING:
    from gancore.data import TensorData


class Settings(BaseModel):
    """Base of every plugin's settings model: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NoSettings(Settings):
    """Settings of a plugin that takes none."""


class Configurable:
    """A plugin class with a settings model ``Config``; ``self.config`` holds a validated instance."""

    Config: ClassVar[type[Settings]] = NoSettings

    def __init__(self, config: Settings | None = None) -> None:
        self.config = config if config is not None else self.Config()


class Generator(nn.Module, ABC):
    """A generator network: ``forward(z_or_x, y=None)`` returns samples in data space.

    Noise-driven generators set ``latent_dim`` and may override :meth:`sample_latent`.
    """

    latent_dim: int = 0

    @abstractmethod
    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Map latent codes (or source-domain inputs) ``z`` and optional labels ``y`` to samples."""

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> Tensor:
        """Draw ``n`` latent codes; by default standard normal of shape ``[n, latent_dim]``."""
        if self.latent_dim <= 0:
            raise NotImplementedError(f"{type(self).__name__} takes no latent codes")
        return torch.randn(n, self.latent_dim, generator=generator, device=device)


class Critic(nn.Module, ABC):
    """A critic (discriminator) network: ``forward(x, y=None)``.

    Returns scores ``[N]``, embeddings ``[N, D]`` or patch scores ``[N, 1, h, w]``.
    """

    @abstractmethod
    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Score the samples ``x`` (with optional labels ``y``)."""


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

    @property
    def every(self) -> int:
        """Apply :meth:`penalty` on every ``every``-th critic step (lazy regularization)."""
        return int(getattr(self.config, "every", 1))

    @property
    def weight(self) -> float:
        """Weight of the penalty in the critic's loss."""
        return float(getattr(self.config, "weight", 1.0))

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


GradFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Batch:
    """One batch of training data: samples ``x`` and, for labelled data, labels ``y``."""

    x: Tensor
    y: Tensor | None = None
    x_b: Tensor | None = None
    """A batch of the second domain, unpaired with ``x`` (two-domain data only)."""
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


@dataclass
class Players:
    """The trained networks: one module per player.

    A player that owns several networks (CycleGAN's two generators) uses an ``nn.ModuleDict``;
    each player's optimizer covers all of its parameters.
    """

    generator: nn.Module
    critic: nn.Module


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
    """2 for unpaired two-domain data (batches then carry ``x_b``)."""


@dataclass(frozen=True)
class Preset:
    """A variant's named bundle of settings, e.g. larger networks and images for a GPU.

    ``settings`` maps dotted keys to values (``{"data.image_size": 128}``); ``--preset NAME``
    puts them over the variant's defaults and under the user's ``--config`` file and ``--set``
    values, so any of them can still be overridden. ``doc`` is the line ``gancore config VARIANT``
    shows.
    """

    doc: str
    settings: dict[str, Any]


class Variant(ABC):
    """A GAN family: its settings, its networks, and what each player minimises.

    Subclasses set ``name`` and ``Config`` (a :class:`Settings` model) and implement
    :meth:`build`, :meth:`critic_step` and :meth:`generator_step`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Settings]] = NoSettings
    conditional: ClassVar[bool] = False
    """True when the variant needs labelled data."""
    presets: ClassVar[dict[str, Preset]] = {}
    """Named bundles of settings for other scales (``gancore run VARIANT --preset NAME``)."""

    def __init__(self, config: Settings, data: DataSpec, loss: Loss) -> None:
        self.config = config
        self.data = data
        self.loss = loss

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        """Defaults this variant sets on the core's config sections, as a nested dict.

        Applied under the user's file and ``--set`` values, for example
        ``{"train": {"n_critic": 5}, "optim": {"critic": {"name": "rmsprop"}}}``.
        ``config`` is the variant's own validated settings, so defaults may depend on a mode.
        """
        return {}

    @abstractmethod
    def build(self) -> Players:
        """Create the networks, freshly initialised (the kernel seeds the RNG first)."""

    def initialize(self, nets: Players, data: TensorData) -> dict[str, Any]:
        """Data-dependent set-up of freshly built networks (nothing by default).

        Called once per fresh run, on every process, after :meth:`build` and before the
        networks move to the device, with the whole training set. A resumed run does not call
        it and restores the networks from the checkpoint, so whatever this sets must live in
        parameters or buffers. Returns JSON-ready facts to report: the trainer writes them to
        ``init.json`` in the run directory and prints one line per key (a dict's ``"summary"``
        entry when it has one).
        """
        return {}

    @abstractmethod
    def critic_step(self, nets: Players, batch: Batch, ctx: StepContext) -> StepOutput:
        """Loss terms for one critic update."""

    @abstractmethod
    def generator_step(self, nets: Players, batch: Batch, ctx: StepContext) -> StepOutput:
        """Loss terms for one generator update."""

    def sample(
        self,
        generator: nn.Module,
        n: int,
        *,
        rng: torch.Generator,
        device: torch.device,
        labels: Tensor | None = None,
    ) -> Tensor:
        """Generate ``n`` samples in data space with ``generator`` (the raw or the EMA one).

        Conditional variants take ``labels`` (``[n]`` class indices; every class equally often
        when None); unconditional ones ignore them.
        """
        from gancore.labels import balanced_labels, check_labels

        if not self.conditional:
            labels = None
        elif labels is None:
            labels = balanced_labels(n, self.data.num_classes, device)
        else:
            labels = check_labels(labels, self.data.num_classes).to(device)
        z = generator.sample_latent(n, generator=rng, device=device)
        return generator(z, labels)

    def preview(
        self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator, device: torch.device
    ) -> tuple[Tensor, int | None]:
        """The images of a progress grid and how many go in a row (None: a square grid).

        ``batch`` is a fixed batch of training data (the same at every call). By default: ``n``
        samples, one row per class for conditional variants. Translation variants show rows of
        input, translation and reconstruction.
        """
        from gancore.labels import class_rows

        if not self.conditional:
            return self.sample(generator, n, rng=rng, device=device), None
        per_class = max(1, n // self.data.num_classes)
        labels = class_rows(per_class, self.data.num_classes, device)
        return self.sample(generator, len(labels), rng=rng, device=device, labels=labels), per_class

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        """Translate images ``x`` (in [-1, 1]) with the trained generator(s).

        ``direction`` is ``"a2b"`` or ``"b2a"``. Only image-to-image variants implement it.
        """
        from gancore.errors import ConfigError

        raise ConfigError(f"variant {self.name!r} does not translate images (it generates from noise)")
