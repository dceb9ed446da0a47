"""The variational autoencoder (Kingma & Welling 2014) and the VAE-GAN (Larsen et al. 2016) as gancore
plugins: ``gancore run vae`` and ``gancore run vaegan``.

``vae``: an encoder q(z | x) = N(mu(x), sigma(x)^2), the reparameterisation z = mu + sigma * eps, a
decoder p(x | z) Gaussian around its output with a fixed ``recon_sigma``; the loss is the negative
ELBO, reconstruction + ``beta`` * KL(q(z | x) || N(0, I)). One network to train (encoder and decoder
together, the ``generator`` player), no critic: its schedule is one phase.

``vaegan``: the same encoder and decoder plus a critic. The reconstruction is measured in the critic's
feature space (its last convolutional features, Dis_l: a Gaussian there, half the squared distance)
instead of pixels, and the decoder also plays the generator against the critic, on its
reconstructions and on samples from the prior. Larsen et al.'s scheme of which losses update which
network, as three players with phases of their own:

- critic (``critic``): L_GAN — real digits against reconstructions and prior samples;
- encoder (``encoder``): L_prior (``beta`` * KL) + L_llike^Dis_l;
- decoder (``generator``): ``gamma`` * L_llike^Dis_l + the generator's side of L_GAN.

``gancore sample`` decodes draws from the prior N(0, I); ``gancore translate --direction a2b``
returns reconstructions (the decoded posterior mean of each input image).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from gancore import (
    Batch,
    ConfigError,
    Networks,
    PenaltyInput,
    Phase,
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

    from gancore.nets import DCGANGenerator
    from gancore_vae.nets import Encoder

torch = lazy_module("torch")
vae_nets = lazy_module("gancore_vae.nets")  # nn.Module subclasses: torch loads when a network is built


class VAESettings(Settings):
    latent_dim: int = Field(32, ge=1, le=4096, description="Dimensions of the latent z (the prior is N(0, I)).")
    beta: float = Field(1.0, ge=0.0, description="Weight of KL(q(z|x) || N(0, I)) (1: the ELBO).")
    recon_sigma: float = Field(0.2, gt=0.0, le=10.0, description="Standard deviation of the decoder's Gaussian "
                               "p(x|z) in pixel units of [-1, 1]: the reconstruction term is the squared error "
                               "summed over pixels over 2 sigma^2.")
    generator_width: int = Field(32, ge=4, le=1024, description="Channels of the decoder's last hidden layer.")
    encoder_width: int = Field(32, ge=4, le=1024, description="Channels of the encoder's first layer.")


class VAEGANSettings(VAESettings):
    gamma: float = Field(0.01, ge=0.0, description="Weight of the feature-space reconstruction in the decoder's "
                         "loss, against the critic's (Larsen et al.'s gamma).")
    critic_width: int = Field(32, ge=4, le=1024, description="Channels of the critic's first layer.")
    critic_norm: str = Field("layer", pattern="^(batch|layer|none)$", description="Normalisation in the critic: "
                             "layer is per sample, so a reconstruction's features never depend on the rest of "
                             "its batch.")


#: Both variants' ``gpu`` preset (the VAE-GAN's critic gets the same width).
GPU_DOC = "64x64 on one GPU: networks 64 wide, a 128-d latent, batch 128, 20,000 steps"
GPU = {"variant.generator_width": 64, "variant.encoder_width": 64, "variant.latent_dim": 128}


def _check_images(name: str, kind: str, domains: int) -> None:
    if kind != "image" or domains != 1:
        raise ConfigError(f"data.name: {name} needs one domain of images (its encoder and decoder are "
                          "convolutional)")


class _Autoencoding(Variant):
    """What the VAE and the VAE-GAN share: sampling from the prior, reconstructions as translations."""

    def translate(self, generator: nn.Module, x: Tensor, direction: str) -> Tensor:
        if direction != "a2b":
            raise ConfigError(f"--direction: a {self.name} run reconstructs its input (a2b), got {direction!r}")
        return generator.reconstruct(x)

    def preview(self, generator: nn.Module, batch: Batch, n: int, *, rng: torch.Generator,
                device: torch.device) -> tuple[Tensor, int | None]:
        """Rows: inputs, their reconstructions, then samples from the prior."""
        cols = max(1, min(n // 4, len(batch.x)))
        x = batch.x[:cols]
        prior = self.sample(generator, 2 * cols, rng=rng, device=device)
        return torch.cat([x, generator.reconstruct(x), prior]), cols

    def _encoder(self) -> Encoder:
        c = self.config
        return vae_nets.Encoder(self.data.shape[0], self.data.shape[-1], c.encoder_width, c.latent_dim)

    def _decoder(self) -> DCGANGenerator:
        c = self.config
        from gancore.nets import DCGANGenerator

        return DCGANGenerator(c.latent_dim, self.data.shape[0], self.data.shape[-1], c.generator_width)


class PlainVAE(_Autoencoding):
    """Encoder and decoder trained on the negative ELBO; no critic."""

    name = "vae"
    Config = VAESettings
    presets = {"gpu": gpu_preset(GPU_DOC, width=None, settings=GPU)}

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        return {"train": {"steps": 3000, "batch_size": 64, "n_critic": 1},
                "optim": {"generator": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.999]}},
                "log": {"samples": 32}}

    def build(self) -> Networks:
        _check_images(self.name, self.data.kind, self.data.domains)
        return Networks(generator=vae_nets.VAE(self._encoder(), self._decoder()))

    def phases(self, n_critic: int) -> list[Phase]:
        return [Phase("generator", self.generator_step)]  # one network, no critic

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        vae, x = nets.generator, batch.x
        mu, logvar = vae.encode(x)
        recon = vae(vae_nets.reparameterize(mu, logvar, ctx.rng).to(x.dtype))
        sq = (recon.float() - x.float()).pow(2).flatten(1).sum(1).mean()
        kl = vae_nets.kl_to_prior(mu, logvar)
        terms = {"recon": sq / (2 * self.config.recon_sigma ** 2), "kl": self.config.beta * kl}
        return StepOutput(terms=terms, stats={"mse": (sq / x[0].numel()).detach()})


class VAEGAN(_Autoencoding):
    """Larsen et al.'s VAE-GAN: feature-space reconstruction, the decoder also a generator."""

    name = "vaegan"
    Config = VAEGANSettings
    presets = {"gpu": gpu_preset(GPU_DOC, width=None, settings={**GPU, "variant.critic_width": 64})}

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        adam = {"name": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}
        return {"loss": {"name": "nonsaturating"},
                "train": {"steps": 3000, "batch_size": 64, "n_critic": 1},
                "optim": {"generator": dict(adam), "critic": dict(adam), "encoder": dict(adam)},
                "log": {"samples": 32}}

    def build(self) -> Networks:
        _check_images(self.name, self.data.kind, self.data.domains)
        c, shape = self.config, self.data.shape
        from gancore.nets import DCGANCritic

        critic = DCGANCritic(shape[0], shape[-1], c.critic_width, norm=c.critic_norm)
        return Networks(generator=self._decoder(), critic=critic, others={"encoder": self._encoder()})

    def phases(self, n_critic: int) -> list[Phase]:
        return [Phase("critic", self.critic_step, repeat=n_critic), Phase("encoder", self.encoder_step),
                Phase("generator", self.generator_step)]

    def translator(self, nets: Networks) -> nn.Module:
        return vae_nets.VAE(nets.get("encoder"), nets.generator)  # reconstructions need the encoder too

    def _llike(self, critic: nn.Module, recon: Tensor, x: Tensor) -> Tensor:
        """-log p(Dis_l(x) | z): a unit Gaussian on the critic's features, half the squared distance."""
        with torch.no_grad():
            target = critic.features(x)
        return 0.5 * (critic.features(recon).float() - target.float()).pow(2).flatten(1).sum(1).mean()

    def _fakes(self, nets: Networks, x: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor]:
        """(reconstructions, prior samples) for the batch ``x``."""
        mu, logvar = nets.get("encoder")(x)
        z = vae_nets.reparameterize(mu, logvar, ctx.rng).to(x.dtype)
        return nets.generator(z), nets.generator(ctx.latent(nets.generator, len(x)))

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        d, x = nets.critic, batch.x
        with torch.no_grad():
            recon, prior = self._fakes(nets, x, ctx)
        real = d(x)
        adv = 0.5 * (self.loss.critic_loss(real, d(recon)) + self.loss.critic_loss(real, d(prior)))
        return StepOutput(terms={"adv": adv}, stats={"real": real.detach().float().mean()},
                          penalties=[PenaltyInput(critic=d, real=x, fake=prior)])

    def encoder_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        x = batch.x
        mu, logvar = nets.get("encoder")(x)
        recon = nets.generator(vae_nets.reparameterize(mu, logvar, ctx.rng).to(x.dtype))
        return StepOutput(terms={"kl": self.config.beta * vae_nets.kl_to_prior(mu, logvar),
                                 "llike": self._llike(nets.critic, recon, x)})

    def generator_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        d, x = nets.critic, batch.x
        recon, prior = self._fakes(nets, x, ctx)
        real = d(x) if self.loss.generator_uses_real else None
        adv = 0.5 * (self.loss.generator_loss(d(recon), real) + self.loss.generator_loss(d(prior), real))
        terms = {"adv": adv}
        if self.config.gamma > 0:
            terms["llike"] = self.config.gamma * self._llike(d, recon, x)
        return StepOutput(terms=terms)


@hookimpl
def gancore_register_variants() -> list[type]:
    return [PlainVAE, VAEGAN]
