"""The core's config sections: train, optim, log and eval settings (``gancore config`` documents them)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gancore.errors import ConfigError
from gancore.interfaces import Settings


class TrainSettings(Settings):
    steps: int = Field(2000, ge=1, le=10**9, description="Generator steps (iterations) to train for.")
    batch_size: int = Field(64, ge=1, le=65536, description="Samples per batch.")
    n_critic: int = Field(1, ge=1, le=100, description="Critic steps per generator step.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seed of every random number in the run.")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Autocast precision. auto: bf16 on GPUs that support it and on CPUs with bf16 units (AMX or "
        "AVX-512-BF16), "
        "else fp32 (the run's first line says which and why; config.json records the choice). fp16 uses one "
        "GradScaler per player.",
    )
    threads: Literal["auto"] | Annotated[int, Field(ge=1, le=4096)] = Field(
        "auto", description="Intra-op threads. auto: the cores this process may use (CPU affinity, cgroup "
        "quota) divided among the gancore runs sharing them, recounted as they start and end. The environment's "
        "OMP_NUM_THREADS, when set, wins.",
    )
    ema: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Decay of an exponential moving average of the generator's weights "
        "(e.g. 0.999); null disables it.",
    )
    ema_half_life_kimg: float | None = Field(
        None, gt=0.0, description="The EMA as stylegan2-ada keeps it: the half-life of its weights in thousands "
        "of images (decay 0.5 ** (images per step / (1000 * this)) each step); instead of train.ema."
    )
    ema_rampup: float | None = Field(
        None, gt=0.0, description="With ema_half_life_kimg: the half-life grows with training, at most this "
        "fraction of the images seen so far (stylegan2-ada's 0.05); null: the full half-life from step 0."
    )
    accumulate: int = Field(
        1, ge=1, le=4096, description="Gradient accumulation: each update runs this many micro-batches of "
        "batch_size / accumulate (penalties per micro-batch) before the optimizer's one step."
    )
    init_from: str | None = Field(
        None, description="Fine-tune: a run directory, a checkpoint or an exported folder whose network weights "
        "the run starts from (fresh optimizers, step 0).")
    init_strict: bool = Field(
        True, description="With init_from: every network tensor must be there with its shape; false loads what "
        "matches and lists the rest.")
    channels_last: Literal["auto", "on", "off"] = Field(
        "auto", description="Channels-last memory format for image data and conv weights. auto: on for "
        "image data, except on the CPU for networks with instance norm or reflection padding, whose CPU "
        "kernels lose in channels-last (measured: +16-17% for DCGAN and WGAN-GP, -7% for CycleGAN)."
    )
    fused_optimizer: Literal["auto", "on", "off"] = Field(
        "auto", description="Fused Adam/AdamW kernels (one kernel per step instead of one per tensor). auto: "
        "on (measured +0-10% on the CPU)."
    )
    allocator: Literal["auto", "keep", "system"] = Field(
        "auto", description="keep: glibc's malloc keeps freed memory in the process (mallopt), so large "
        "activations are not page-faulted back every iteration (measured +4% for DCGAN at 64x64 on the CPU); "
        "system: malloc as it is. auto: keep when training on the CPU where glibc is."
    )
    compile: bool = Field(
        False, description="torch.compile the generator, and the critic when no regularizer needs its double "
        "backward (compile does not support it: that pass stays eager). Measured to gain nothing for these "
        "small networks on a CPU; try it on a GPU."
    )

    @model_validator(mode="after")
    def _ema_and_accumulation(self) -> TrainSettings:
        if self.ema is not None and self.ema_half_life_kimg is not None:
            raise ValueError("ema and ema_half_life_kimg are both set: give the EMA's decay one way")
        if self.ema_rampup is not None and self.ema_half_life_kimg is None:
            raise ValueError("ema_rampup needs ema_half_life_kimg (it ramps up that half-life)")
        if self.batch_size % self.accumulate:
            raise ValueError(f"accumulate = {self.accumulate} does not divide batch_size {self.batch_size} "
                             "into equal micro-batches")
        return self

    @property
    def keeps_ema(self) -> bool:
        """An EMA is kept (``ema`` or ``ema_half_life_kimg``)."""
        return self.ema is not None or self.ema_half_life_kimg is not None

    def ema_decay(self, step: int, images_per_step: int) -> float:
        """The EMA's decay at ``step`` (0-based) with ``images_per_step`` images in each (every process's).
        A fixed ``ema``, or stylegan2-ada's: ``0.5 ** (images_per_step / half_life)``, the half-life
        ``1000 * ema_half_life_kimg`` images capped at ``ema_rampup`` times the images seen after this step."""
        if self.ema_half_life_kimg is None:
            return float(self.ema or 0.0)
        half_life = self.ema_half_life_kimg * 1000.0
        if self.ema_rampup is not None:
            half_life = min(half_life, (step + 1) * images_per_step * self.ema_rampup)
        return 0.5 ** (images_per_step / max(half_life, 1e-8))

    @field_validator("channels_last", "fused_optimizer", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        """true/false (and runs saved before "auto" existed) mean on/off."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if value == "auto" and isinstance(value, str):
            return value
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096:
            return value
        raise ValueError(f"expected auto or a number of threads from 1 to 4096, got {value!r}")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (
            value.startswith("cuda:") and value[5:].isascii() and value[5:].isdigit() and len(value) <= 9
        ):
            return value
        raise ValueError("expected auto, cpu, cuda or cuda:N")


#: The largest float32: optimizer hyperparameters beyond it overflow inside the optimizer's kernels.
FLOAT32_MAX = 3.4028234663852886e38


class OptimizerSettings(Settings):
    name: Literal["adam", "adamw", "rmsprop", "sgd"] = Field("adam", description="Optimizer.")
    lr: float = Field(2e-4, gt=0.0, description="Learning rate.")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam/AdamW betas.")
    eps: float = Field(1e-8, gt=0.0, description="Numerical stability term.")
    weight_decay: float = Field(0.0, ge=0.0, description="Weight decay.")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="RMSprop/SGD momentum.")
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant",
        description="Learning-rate schedule: constant; linear decay to 0 from decay_start (a fraction of "
        "train.steps) to the last step; or cosine decay to 0 from the end of the warm-up to the last step.",
    )
    decay_start: float = Field(0.5, ge=0.0, lt=1.0, description="Where the linear decay starts.")
    warmup_steps: int = Field(0, ge=0, le=10**9, description="Steps of linear warm-up from lr / warmup_steps to lr "
                              "before the schedule (any schedule; 0: none).")

    @property
    def scheduled(self) -> bool:
        """True when the rate changes during the run (a decay or a warm-up)."""
        return self.schedule != "constant" or self.warmup_steps > 0

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate for generator step ``step`` (0-based) of ``total``: a pure function of the
        step, so a resumed run continues the schedule exactly."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            span = max(total - self.warmup_steps, 1)
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / span)))
        start = max(self.decay_start * total, self.warmup_steps)
        if step < start:
            return self.lr
        return self.lr * max(0.0, (total - step) / max(total - start, 1.0))

    @field_validator("betas")
    @classmethod
    def _betas(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError("each beta must be in [0, 1)")
        return value

    @field_validator("lr", "eps", "weight_decay")
    @classmethod
    def _float32(cls, value: float) -> float:
        if not abs(value) <= FLOAT32_MAX:  # also refuses inf and nan
            raise ValueError(f"must be a finite number representable in float32 (at most {FLOAT32_MAX:.4g})")
        return value


class OptimSettings(Settings):
    """One optimizer per player: ``generator``, ``critic`` and, for a variant with further
    players (``Networks.others``), ``optim.<player>`` tables of the same settings."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    generator: OptimizerSettings = Field(default_factory=OptimizerSettings)
    critic: OptimizerSettings = Field(default_factory=OptimizerSettings)

    @model_validator(mode="after")
    def _other_players(self) -> OptimSettings:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, OptimizerSettings):
                if not isinstance(value, dict):
                    raise ValueError(f"{name}: expected a table of optimizer settings")
                try:
                    self.model_extra[name] = OptimizerSettings.model_validate(value)
                except ValidationError as exc:  # located under the player: optim.<player>.lr, not optim.lr
                    raise ValidationError.from_exception_data(exc.title, [
                        {"type": e["type"], "loc": (name, *e["loc"]), "input": e.get("input"), "ctx": e.get("ctx", {})}
                        if e["type"] not in ("value_error", "assertion_error") else
                        {"type": "value_error", "loc": (name, *e["loc"]), "input": e.get("input"),
                         "ctx": {"error": e.get("ctx", {}).get("error", e["msg"])}}
                        for e in exc.errors()]) from None
        return self

    def for_player(self, player: str) -> OptimizerSettings:
        """The settings of ``player``'s optimizer; a player without any is a config error."""
        if player in ("generator", "critic"):
            return getattr(self, player)
        extra = self.model_extra or {}
        if player not in extra:
            raise ConfigError(f"optim.{player}: the variant trains a network {player!r}, which needs "
                              f"optimizer settings (set optim.{player}.name, lr, ...)")
        return extra[player]

    def players(self) -> list[str]:
        return ["generator", "critic", *(self.model_extra or {})]


class LogSettings(Settings):
    every: int = Field(50, ge=1, le=10**9, description="Steps between metrics.jsonl records.")
    sample_every: int = Field(500, ge=0, le=10**9, description="Steps between sample grids; 0: only at end.")
    checkpoint_every: int = Field(
        1000, ge=0, le=10**9, description="Steps between checkpoints; 0: only at the end."
    )
    keep_checkpoints: int = Field(3, ge=1, le=10**6, description="Most recent checkpoints kept.")
    samples: int = Field(64, ge=1, le=1024, description="Images in each sample grid.")
    scatter_points: int = Field(
        2000, ge=1, le=100_000, description="Points in each scatter plot (vector data)."
    )
    progress: bool = Field(True, description="Show a progress bar.")
    tensorboard: bool = Field(
        False, description="Also write losses, metrics and sample grids for TensorBoard to RUN/tensorboard/ "
        "(needs the tensorboard package)."
    )


class NamedSection(BaseModel):
    """A section selecting a plugin class by ``name``; its other keys are that class's settings."""

    model_config = ConfigDict(extra="allow")
    name: str


class EvalSettings(Settings):
    every: int = Field(
        0, ge=0, le=10**9, description="Steps between evaluations during training (and at the end); 0: none. "
        "Results go to metrics.jsonl as eval/<metric>/<value> and to eval/*.json."
    )
    n: int = Field(1000, ge=2, le=100_000, description="Samples drawn for each evaluation.")
    metrics: list[NamedSection] = Field(
        default_factory=list, description="Metrics, e.g. [{name = \"fid\"}]; empty: the task's defaults "
        "(fid; label-accuracy for conditional runs; modes for 2-D mixtures; preservation for translation)."
    )
