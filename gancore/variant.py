"""The variant interface: a GAN family's settings, networks, schedule and losses.

A *variant* owns its game: it builds its players' networks and says what each player minimises,
as named loss terms, in a schedule of :class:`Phase` objects. The kernel owns the mechanics:
autocast, backward, gradient scaling, optimizer steps, regularizers, EMA, checkpoints. A variant
never calls ``backward()`` or ``optimizer.step()``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from gancore.interfaces import Batch, DataSpec, Loss, Networks, NoSettings, Settings, StepContext, StepOutput

if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

    from gancore.data import TensorData

StepFn = Callable[[Networks, Batch, StepContext], StepOutput]

CRITIC = "critic"
"""The player regularizers act on (penalties on its phases' inputs, constraints after its updates),
whose update count lazy regularization follows and whose ``optim.critic`` section every run has."""


@dataclass(frozen=True)
class Phase:
    """One entry of a training iteration's schedule, in the spirit of stylegan2-ada's phases.

    Each iteration runs the phases in order; a phase updates the network of ``player`` (a name
    of :class:`~gancore.Networks`) ``repeat`` times in a row with the loss terms ``step``
    returns, and runs only on every ``every``-th iteration (a lazy phase). The other players'
    parameters are frozen while it runs. Regularizers (penalties, constraints) act on the
    :data:`CRITIC` player's phases.

    ``with_players`` names players updated *together* with ``player`` by the same loss: one
    backward, then each one's optimizer steps (BiGAN's encoder and generator against one
    critic, an autoencoder's encoder and decoder). Their gradients are not frozen; the terms are
    logged under ``player``'s name and each player's update count advances.

    ``keep_graph`` names players this phase does not update but runs with their parameters
    trainable, so the graph it builds through them can serve a later phase of the iteration
    (left in :attr:`StepContext.carry`): the critic's phase generating the batch the generator's
    phase then scores, one generator forward per iteration as pytorch/examples' DCGAN does. They
    stay trainable on the phase's last repeat only (earlier repeats build no graph through them);
    the step keeps that graph out of its own loss (``detach``); one process only.
    """

    player: str
    step: StepFn
    repeat: int = 1
    every: int = 1
    with_players: tuple[str, ...] = ()
    keep_graph: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.repeat < 1 or self.every < 1:
            raise ValueError(f"Phase({self.player!r}): repeat and every must be at least 1")
        if isinstance(self.with_players, str) or self.player in self.with_players:
            raise ValueError(f"Phase({self.player!r}): with_players is a tuple of the other players' names")
        if isinstance(self.keep_graph, str) or set(self.keep_graph) & set(self.players):
            raise ValueError(f"Phase({self.player!r}): keep_graph is a tuple of players this phase does not update")

    @property
    def players(self) -> tuple[str, ...]:
        """Every player this phase updates: ``player`` first, then ``with_players``."""
        return (self.player, *self.with_players)


@dataclass(frozen=True)
class Capabilities:
    """What a variant's game can do with given settings (:meth:`Variant.capabilities`).

    The kernel, the config resolver and the contract suite (:mod:`gancore.testing`) read it, so
    a capability that holds for some settings only is stated, and tested, per setting."""

    generator_loss_gets_real: bool = True
    """The generator steps pass the critic's outputs on a real batch to ``loss.generator_loss``
    whenever ``loss.generator_uses_real`` (relativistic losses). False makes such a loss a config
    error at resolve time; the contract suite trains with such a loss wherever this is True."""
    ema_players: tuple[str, ...] = ("generator",)
    """The players that keep an exponential moving average of their weights when ``train.ema`` is
    set (checkpointed as ``ema`` for the generator, ``ema_<player>`` for the others); sampling,
    translation and evaluation use the averages unless told not to (``--no-ema``)."""
    min_batch_size: int = 1
    """The smallest ``train.batch_size`` the networks accept (a BatchNorm1d needs two samples per channel):
    a smaller one is a config error naming the key at resolve time, before anything is built."""
    min_image_size: int = 1
    """The smallest ``data.image_size`` the networks' downsampling accepts (an InstanceNorm needs more than
    one value per channel, a 4x4 convolution a map of at least 2x2): checked like ``min_batch_size``."""
    auto_bf16: bool = True
    """Whether ``train.precision = auto`` may choose bf16 autocast (on a GPU or CPU with bf16 units). False
    keeps ``auto`` at fp32 for a game whose results were measured not to hold at bf16 (the run's first line
    says so); an explicit ``train.precision = bf16`` is still obeyed."""


def patchgan_min_image_size(layers: int) -> int:
    """The smallest image side a PatchGAN critic of ``layers`` strided layers (:class:`gancore.nets.PatchCritic`)
    takes, for :attr:`Capabilities.min_image_size`: every 4x4 convolution (padding 1) sees at least 2x2, and
    every normalised map holds more than one value (InstanceNorm refuses a 1x1 map). Needs no torch, so
    resolving a config stays light."""
    for side in range(2, 1 << 16):
        size, fits = side // 2, True  # after the first, unnormalised, stride-2 convolution
        for i in range(1, layers + 1):
            fits = fits and size >= 2
            size = (size - 2) // (2 if i < layers else 1) + 1
            fits = fits and size >= 2
        if fits and size >= 2:  # the last convolution needs 2x2 too
            return side
    raise ValueError(f"no image size fits a PatchGAN of {layers} layers")


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


def gpu_preset(doc: str | None = None, *, image_size: int = 64, width: int | None = 64, batch_size: int = 128,
               steps: int = 20000, settings: dict[str, Any] | None = None) -> Preset:
    """The usual ``gpu`` preset: ``image_size`` pixels, both networks ``width`` wide (the
    :class:`~gancore.NetworkWidths` keys; None leaves them alone), ``batch_size``, ``steps``, a
    sample grid every ``steps / 20`` and a checkpoint every ``steps / 10``; ``settings`` (dotted
    keys) added or overriding. ``doc`` defaults to a line saying all that."""
    values: dict[str, Any] = {"data.image_size": image_size}
    if width is not None:
        values.update({"variant.generator_width": width, "variant.critic_width": width})
    values.update({"train.batch_size": batch_size, "train.steps": steps,
                   "log.sample_every": max(1, steps // 20), "log.checkpoint_every": max(1, steps // 10)})
    values.update(settings or {})
    wide = f"networks {width} wide, " if width is not None else ""
    return Preset(doc or f"{image_size}x{image_size} on one GPU: {wide}batch {batch_size}, {steps:,} steps", values)


@dataclass(frozen=True)
class InitReport:
    """What a variant's :meth:`Variant.initialize` found, under one name.

    ``summary`` is the line ``gancore run`` prints (``initialize: <name>: <summary>``);
    ``details`` (JSON-ready) go to the run's ``init.json`` beside it.
    """

    name: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, **self.details}


class Variant(ABC):
    """A GAN family: its settings, its networks, its schedule and what each player minimises.

    Subclasses set ``name`` and ``Config`` (a :class:`Settings` model) and implement
    :meth:`build` and either :meth:`critic_step` and :meth:`generator_step` (the standard
    schedule) or :meth:`phases` (their own).
    """

    name: ClassVar[str]
    Config: ClassVar[type[Settings]] = NoSettings
    conditional: ClassVar[bool] = False
    """True when the variant needs labelled data (:meth:`sample` then takes ``labels``)."""
    presets: ClassVar[dict[str, Preset]] = {}
    """Named bundles of settings for other scales (``gancore run VARIANT --preset NAME``)."""
    checkpoint_renames: ClassVar[dict[str, str]] = {}
    """Checkpoint prefixes this variant's networks moved from (old -> new, e.g. ``{"critic.pool_a":
    "state_pool_a"}``): a checkpoint written before the move still loads and resumes."""

    def __init__(self, config: Settings, data: DataSpec, loss: Loss) -> None:
        self.config = config
        self.data = data
        self.loss = loss

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        """What this variant can do with its validated settings ``config`` (see
        :class:`Capabilities`; the defaults: relativistic losses work, the generator keeps an EMA)."""
        return Capabilities()

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        """Defaults this variant sets on the core's config sections, as a nested dict.

        Applied under the user's file and ``--set`` values, for example
        ``{"train": {"n_critic": 5}, "optim": {"critic": {"name": "rmsprop"}}}``.
        ``config`` is the variant's own validated settings, so defaults may depend on a mode.
        """
        return {}

    @classmethod
    def data_defaults(cls, config: Settings, kind: str) -> dict[str, Any]:
        """Defaults that depend on the kind of data (``"image"`` or ``"vector"``), as a nested dict.

        Applied over :meth:`defaults` and under the user's file and ``--set`` values, once the
        data source is known (its ``data_kind``), without loading the data. ``gancore config``
        marks the values that came from here.
        """
        return {}

    @abstractmethod
    def build(self) -> Networks:
        """Create the networks, freshly initialised (the kernel seeds the RNG first)."""

    def phases(self, n_critic: int) -> list[Phase]:
        """The schedule of one training iteration. By default ``n_critic`` critic updates
        (:meth:`critic_step`), then one generator update (:meth:`generator_step`); a model
        without a critic returns only its generator's phase, and a third player its own."""
        return [Phase(CRITIC, self.critic_step, repeat=n_critic), Phase("generator", self.generator_step)]

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        """Loss terms for one critic update (used by the default :meth:`phases`)."""
        raise NotImplementedError(f"variant {self.name!r} has no critic_step; its phases() must not use it")

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        """Loss terms for one generator update (used by the default :meth:`phases`)."""
        raise NotImplementedError(f"variant {self.name!r} has no generator_step; its phases() must not use it")

    def initialize(self, nets: Networks, data: TensorData) -> list[InitReport]:
        """Data-dependent set-up of freshly built networks (nothing by default).

        Called once per fresh run, on every process, after :meth:`build` and before the
        networks move to the device, with the whole training set. A resumed run does not call
        it and restores the networks from the checkpoint, so whatever this sets must live in
        parameters or buffers. The reports are printed (one line each) and written to the run's
        ``init.json`` by the ``init-report`` feature plugin.
        """
        return []

    def sample(
        self,
        generator: nn.Module,
        n: int,
        *,
        rng: torch.Generator,
        device: torch.device,
        labels: Tensor | None = None,
        codes: dict[str, Tensor] | None = None,
    ) -> Tensor:
        """Generate ``n`` samples in data space with ``generator`` (the raw or the EMA one).

        ``gancore sample``, evaluation and the default :meth:`preview` call it, in eval mode and
        without gradients, in chunks. Conditional variants take ``labels`` (``[n]`` class indices;
        every class equally often when None); unconditional ones ignore them. A generator with
        structured codes (``generator.codes``, :mod:`gancore.codes`) gets them drawn after the noise,
        with the values in ``codes`` (name -> ``[n]`` or ``[n, size]``) fixed; ``codes`` for a
        generator without them is a one-line error. Override it when the generator's input is more
        than that. A generator that takes no noise (a translator's) makes it a one-line error
        pointing to ``gancore translate``.
        """
        from gancore.codes import codes_of, draw_codes
        from gancore.errors import ConfigError
        from gancore.labels import balanced_labels, check_labels

        if not self.conditional:
            labels = None
        elif labels is None:
            labels = balanced_labels(n, self.data.num_classes, device)
        else:
            labels = check_labels(labels, self.data.num_classes).to(device)
        sample_latent = getattr(generator, "sample_latent", None)
        try:
            if sample_latent is None:
                raise NotImplementedError
            z = sample_latent(n, generator=rng, device=device)
        except NotImplementedError:
            raise ConfigError(f"variant {self.name!r} translates images (its generator takes no noise): use "
                              "`gancore translate`, not `gancore sample`") from None
        spec = codes_of(generator)
        if not spec:
            if codes:
                raise ConfigError(f"--code: variant {self.name!r} has no codes (its generator takes noise only)")
            return generator(z, labels)
        try:
            drawn = draw_codes(spec, n, generator=rng, device=device, fixed=codes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return generator(z, labels, codes=drawn)

    def preview(
        self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator, device: torch.device
    ) -> tuple[Tensor, int | None]:
        """The images of a progress grid and how many go in a row (None: a square grid).

        Called by the ``sample-grids`` feature plugin every ``log.sample_every`` steps, in eval
        mode, with the module :meth:`translator` returns (the generator, by default). ``batch``
        is a fixed batch of training data (the same at every call). By default: ``n`` samples, one
        row per class for conditional variants. Translation variants show rows of input,
        translation and reconstruction.
        """
        from gancore.labels import class_rows

        if not self.conditional:
            return self.sample(generator, n, rng=rng, device=device), None
        per_class = max(1, n // self.data.num_classes)
        labels = class_rows(per_class, self.data.num_classes, device)
        return self.sample(generator, len(labels), rng=rng, device=device, labels=labels), per_class

    def translator(self, nets: Networks) -> nn.Module:
        """The module :meth:`translate` is handed: by default the generator. ``nets`` are the run's
        networks with the generator ``gancore translate`` chose (the EMA one unless ``--no-ema``).
        A variant whose translation needs another player's network too (the VAE-GAN's encoder,
        trained by a phase of its own) returns a module holding both."""
        return nets.generator

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        """Translate images ``x`` (in [-1, 1]) with the trained generator(s).

        ``direction`` is ``"a2b"`` or ``"b2a"``. Only image-to-image variants implement it.
        """
        from gancore.errors import ConfigError

        raise ConfigError(f"variant {self.name!r} does not translate images (it generates from noise)")
