"""Reusable network blocks for variant plugins (public API)."""

from gancore.nets.dcgan import DCGANCritic, DCGANGenerator, dcgan_init, image_levels
from gancore.nets.mlp import MLPCritic, MLPGenerator

__all__ = ["DCGANCritic", "DCGANGenerator", "MLPCritic", "MLPGenerator", "dcgan_init", "image_levels"]
