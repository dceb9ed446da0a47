"""InfoGAN (Chen et al. 2016) as a gancore plugin: codes that learn meaningful features without labels.

The generator takes noise z (16 here, 62 in the paper) and structured codes c beside it — a
categorical code of 10 classes and 2 continuous codes uniform in [-1, 1] — through the kernel's
code mechanism (``Generator.codes``, :meth:`gancore.StepContext.codes`), so the codes drawn for a
batch reach the step, the checkpoint and ``gancore sample --code K``. A Q head on the critic's
body predicts the codes of a generated sample; the information lower bound L_I — the
cross-entropy of the categorical code plus the Gaussian negative log-likelihood (unit variance:
half the squared error) of the continuous ones, weighted by lambda = 1 — is minimised by the
generator (its phase) and by Q (the critic's phase, with the body and the head), beside the
adversarial loss. The paper's MNIST schedule: Adam with beta1 0.5, 2e-4 for D and Q, 1e-3 for G,
BatchNorm in both networks, FC 1024 layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore import (
    Batch,
    Capabilities,
    Code,
    ConfigError,
    Networks,
    NetworkWidths,
    PenaltyInput,
    Settings,
    StepContext,
    StepOutput,
    Variant,
    gpu_preset,
    hookimpl,
    lazy_module,
)

if TYPE_CHECKING:
    from torch import Tensor, nn

    from gancore_infogan.nets import InfoScores

torch = lazy_module("torch")
F = lazy_module("torch.nn.functional")
info_nets = lazy_module("gancore_infogan.nets")  # nn.Module subclasses: torch loads when a network is built


class InfoGANSettings(NetworkWidths):
    categories: int = Field(10, ge=0, le=1000, description="Classes of the categorical code (10 in the paper for "
                            "MNIST; 0: none).")
    continuous: int = Field(2, ge=0, le=64, description="Continuous codes, each uniform in [-1, 1] (2 in the paper; "
                            "0: none).")
    noise_dim: int = Field(16, ge=1, le=4096, description="Length of the incompressible noise z beside the codes "
                           "(62 in the paper for MNIST's 60,000 digits; 16 for the 1,797 built-in ones, where 62 left "
                           "the categorical code mixing digits: benchmarks/README.md).")
    info_weight: float = Field(1.0, ge=0.0, description="lambda: weight of the categorical code's cross-entropy in "
                               "L_I (1 in the paper).")
    continuous_weight: float = Field(1.0, ge=0.0, description="Weight of the continuous codes' Gaussian "
                                     "log-likelihood term in L_I.")
    hidden: int = Field(1024, ge=0, le=8192, description="Units of the fully connected layer the paper puts after "
                        "the generator's input and before the critic's heads (1024; 0: none, plain DCGAN stacks).")
    real_code_weight: float = Field(0.0, ge=0.0, description="Weight of a CatGAN-style term on real images "
                                    "(Springenberg 2016): Q's reading of a real batch made confident per image and "
                                    "balanced over the batch (minus the mutual information between the images and "
                                    "Q's categories), so the categories Q reads in generated images are the "
                                    "classes real data falls into (0: off, the paper's InfoGAN).")
    q_hidden: int = Field(128, ge=4, le=4096, description="Hidden units of the Q head on the critic's body "
                          "(128 in the paper).")


class InfoGAN(Variant):
    """Noise and codes -> generator -> critic with a Q head; adversarial loss + lambda * L_I for G and Q."""

    name = "infogan"
    Config = InfoGANSettings
    presets = {
        "gpu": gpu_preset(),
    }

    @classmethod
    def capabilities(cls, config: Settings) -> Capabilities:
        # the Q head's BatchNorm1d needs two samples; under bf16 autocast the categorical code stops
        # reading as the digit (Hungarian accuracy 0.69-0.83 on 5 seeds against 0.89-0.96 in fp32 on
        # the same CPU: benchmarks/README.md, "InfoGAN"), so auto stays fp32
        return Capabilities(min_batch_size=2, auto_bf16=False)

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return {
            # the 8x8 digits at 16x16: at the core's default 32x32 the paper's schedule (G at 1e-3)
            # collapsed to one image on 3 of 3 runs (benchmarks/README.md); other data keep their size
            "data": {"name": "digits", "image_size": 16},
            "loss": {"name": "nonsaturating"},
            # samples from an EMA of the generator: the raw generator's code-to-digit reading swings by
            # up to 12.5 points between checkpoints 250 steps apart (G steps at 1e-3); the average holds
            # it (benchmarks/README.md, "InfoGAN": seeds 0-4 all at 93% or more on both judges with it,
            # 3 of 5 without; 6 of 8 over seeds 0-7, where two keep the digit 1 without a code of its own)
            "train": {"steps": 3000, "batch_size": 64, "n_critic": 1, "ema": 0.999},
            "optim": {"generator": {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.999]},
                      "critic": {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}},
            "log": {"samples": 100},
        }

    def codes(self) -> tuple[Code, ...]:
        c = self.config
        out = []
        if c.categories:
            if c.categories < 2:
                raise ConfigError(f"variant.categories: a categorical code needs at least 2 classes, "
                                  f"got {c.categories}")
            out.append(Code("category", "categorical", c.categories))
        out += [Code(f"c{i + 1}", "uniform", 1) for i in range(c.continuous)]
        if not out:
            raise ConfigError("variant.categories, variant.continuous: InfoGAN needs at least one code (both are 0); "
                              "for a GAN without codes use dcgan")
        return tuple(out)

    def build(self) -> Networks:
        if self.data.kind != "image":
            raise ConfigError("data.name: infogan needs image data (its networks are convolutional)")
        c, channels, size = self.config, self.data.shape[0], self.data.shape[-1]
        codes = self.codes()
        generator = info_nets.InfoGenerator(codes, c.noise_dim, channels, size, c.generator_width, c.hidden)
        critic = info_nets.InfoCritic(channels, size, c.critic_width, c.categories, c.continuous, c.hidden, c.q_hidden)
        return Networks(generator=generator, critic=critic)

    # -- L_I: what G and Q minimise beside the adversarial loss ----------------------------------
    def _information(self, out: InfoScores, codes: dict[str, Tensor], terms: dict[str, Tensor],
                     stats: dict[str, Tensor]) -> None:
        c = self.config
        if out.code_logits is not None:
            target = codes["category"]
            terms["info_cat"] = c.info_weight * F.cross_entropy(out.code_logits.float(), target)
            stats["code_accuracy"] = (out.code_logits.argmax(1) == target).float().mean().detach()
        if out.code_mean is not None:
            target = torch.cat([codes[f"c{i + 1}"] for i in range(c.continuous)], dim=1)
            nll = 0.5 * (out.code_mean.float() - target).pow(2).sum(1).mean()
            terms["info_cont"] = c.continuous_weight * nll

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        n = batch.x.shape[0]
        z = ctx.latent(g, n)
        codes = ctx.codes(g, n)
        with torch.no_grad():
            fake = g(z, codes=codes)
        real, generated = d(batch.x), d(fake)
        terms = {"adv": self.loss.critic_loss(real.scores, generated.scores)}
        stats = {"real": real.scores.detach().float().mean(), "fake": generated.scores.detach().float().mean()}
        self._information(generated, codes, terms, stats)  # Q (and the body) learn to read the codes
        if self.config.real_code_weight and real.code_logits is not None:
            p = F.softmax(real.code_logits.float(), dim=1)
            marginal = p.mean(0)
            balance = -(marginal * marginal.clamp_min(1e-12).log()).sum()  # H[p(c)]: every category used
            confidence = -(p * p.clamp_min(1e-12).log()).sum(1).mean()  # E H[p(c|x)]: each image one category
            terms["real_code"] = self.config.real_code_weight * (confidence - balance)
        return StepOutput(terms=terms, stats=stats,
                          penalties=[PenaltyInput(critic=lambda x: d(x).scores, real=batch.x, fake=fake)])

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        g, d = nets.generator, nets.critic
        n = batch.x.shape[0]
        z = ctx.latent(g, n)
        codes = ctx.codes(g, n)
        real = d(batch.x).scores if self.loss.generator_uses_real else None
        generated = d(g(z, codes=codes))
        terms = {"adv": self.loss.generator_loss(generated.scores, real)}
        self._information(generated, codes, terms, {})  # G makes its codes readable
        return StepOutput(terms=terms)

    def preview(self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, int | None]:
        """The paper's picture: one row per class of the categorical code, the columns sweeping the
        first continuous code from -1 to 1, one noise vector and the other codes at 0 for the grid."""
        c = self.config
        rows = c.categories or 1
        cols = max(2, n // rows)
        # one noise vector for the grid; without continuous codes, one per column
        z = generator.sample_latent(1 if c.continuous else cols, generator=rng, device=device)
        z = z.expand(rows * cols, -1) if c.continuous else z.repeat(rows, 1)
        codes: dict[str, Tensor] = {}
        if c.categories:
            codes["category"] = torch.arange(rows, device=device).repeat_interleave(cols)
        sweep = torch.linspace(-1.0, 1.0, cols, device=device).repeat(rows)[:, None]
        for i in range(c.continuous):
            codes[f"c{i + 1}"] = sweep if i == 0 else torch.zeros_like(sweep)
        return generator(z, codes=codes), cols


@hookimpl
def gancore_register_variants() -> list[type]:
    return [InfoGAN]
