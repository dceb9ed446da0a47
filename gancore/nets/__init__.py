"""Reusable network blocks for variant plugins (public API)."""

from gancore.nets.attention import SelfAttention
from gancore.nets.dcgan import DCGANCritic, DCGANGenerator, dcgan_init, image_levels
from gancore.nets.mlp import MLPCritic, MLPGenerator
from gancore.nets.resnet import PatchCritic, ResidualBlock, ResnetGenerator
from gancore.nets.unet import UNetGenerator

__all__ = [
    "DCGANCritic",
    "DCGANGenerator",
    "MLPCritic",
    "MLPGenerator",
    "PatchCritic",
    "ResidualBlock",
    "ResnetGenerator",
    "SelfAttention",
    "UNetGenerator",
    "dcgan_init",
    "image_levels",
]
