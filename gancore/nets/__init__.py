"""Reusable network blocks for variant plugins (public API)."""

from gancore.nets.dcgan import DCGANCritic, DCGANGenerator, dcgan_init, image_levels

__all__ = ["DCGANCritic", "DCGANGenerator", "dcgan_init", "image_levels"]
