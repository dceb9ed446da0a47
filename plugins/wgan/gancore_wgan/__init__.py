"""Wasserstein GAN as a gancore plugin, in two modes.

- ``clip`` (Arjovsky et al. 2017): weight clipping to [-0.01, 0.01] after every critic step,
  RMSprop 5e-5 (no momentum), 5 critic steps per generator step.
- ``gp`` (Gulrajani et al. 2017): gradient penalty lambda = 10 on per-sample interpolates,
  Adam 1e-4 (0, 0.9), 5 critic steps, no BatchNorm in the critic (layer norm).

The critic's output is linear (unbounded) and the loss is ``wasserstein``. Clipping and the
penalty are the core's regularizers (``weight-clip``, ``gradient-penalty``), set as this
variant's defaults: tune them under ``regularizers`` like any other. The critic's estimate of
the Wasserstein distance, E[D(real)] - E[D(fake)], is logged as ``critic/w_distance``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from gancore import Batch, Networks, Settings, StepContext, StepOutput, gpu_preset, hookimpl
from gancore.games import NoiseGame, NoiseGameSettings, standard_networks


class WGANSettings(NoiseGameSettings):
    mode: Literal["clip", "gp"] = Field(
        "gp", description="clip: weight clipping + RMSprop; gp: gradient penalty + Adam."
    )
    latent_dim: int | None = Field(
        None, ge=1, le=4096, description="Length of the noise vector z; null: 100 for images, 2 for vector data."
    )
    critic_norm: Literal["layer", "none", "batch"] | None = Field(
        None,
        description="Normalisation in the critic: layer (gp default) or batch (clip default); "
        "batch is refused in gp mode (it couples the samples the per-sample penalty treats "
        "apart).",
    )
    mlp_hidden: int = Field(256, ge=4, le=65536, description="Hidden units of the MLPs used for vector data.")
    mlp_layers: int = Field(3, ge=1, le=16, description="Hidden layers of the MLPs for vector data.")

    @model_validator(mode="after")
    def _no_batchnorm_with_gp(self) -> WGANSettings:
        if self.mode == "gp" and self.critic_norm == "batch":
            raise ValueError(
                "critic_norm: batch norm breaks the per-sample gradient penalty; use layer or none"
            )
        return self


class WGAN(NoiseGame):
    """Wasserstein GAN: weight clipping (mode clip) or gradient penalty (mode gp)."""

    name = "wgan"
    Config = WGANSettings
    presets = {
        "gpu": gpu_preset("64x64 on one GPU: networks 64 wide, batch 64, 20,000 generator steps (each with the "
                          "mode's critic steps)", batch_size=64),
    }

    @classmethod
    def defaults(cls, config: Settings) -> dict[str, Any]:
        assert isinstance(config, WGANSettings)
        common = {"loss": {"name": "wasserstein"}, "train": {"steps": 1500, "batch_size": 64, "n_critic": 5}}
        if config.mode == "clip":
            rmsprop = {"name": "rmsprop", "lr": 5e-5, "momentum": 0.0}
            return {**common, "optim": {"generator": rmsprop, "critic": rmsprop},
                    "regularizers": [{"name": "weight-clip", "clip": 0.01}]}
        adam = {"name": "adam", "lr": 1e-4, "betas": [0.0, 0.9]}
        return {**common, "optim": {"generator": adam, "critic": adam},
                "regularizers": [{"name": "gradient-penalty", "weight": 10.0}]}

    @classmethod
    def data_defaults(cls, config: Settings, kind: str) -> dict[str, Any]:
        """On vector data (the 2-D mixtures) gp mode takes the settings a sweep found on the
        25-Gaussian grid (benchmarks/README.md): lambda 1, Adam 2e-3 (0, 0.9) decayed linearly to 0
        over 6,000 steps of batch 256; the paper's lambda 10 and 1e-4 were chosen for images."""
        assert isinstance(config, WGANSettings)
        if kind != "vector" or config.mode != "gp":
            return {}
        adam = {"name": "adam", "lr": 2e-3, "betas": [0.0, 0.9], "schedule": "linear", "decay_start": 0.0}
        return {"train": {"steps": 6000, "batch_size": 256}, "optim": {"generator": adam, "critic": dict(adam)},
                "regularizers": [{"name": "gradient-penalty", "weight": 1.0}]}

    def build(self) -> Networks:
        c = self.config
        norm = c.critic_norm or ("layer" if c.mode == "gp" else "batch")
        return standard_networks(self.data, latent_dim=c.latent_dim, generator_width=c.generator_width,
                                critic_width=c.critic_width, critic_norm=norm,
                                mlp_hidden=c.mlp_hidden, mlp_layers=c.mlp_layers)

    def critic_step(self, nets: Networks, batch: Batch, ctx: StepContext) -> StepOutput:
        out = super().critic_step(nets, batch, ctx)
        out.stats["w_distance"] = out.stats["real"] - out.stats["fake"]
        return out


@hookimpl
def gancore_register_variants() -> list[type]:
    return [WGAN]
