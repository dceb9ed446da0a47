"""Class-conditional generator and critics for the cGAN plugin."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gancore import Critic, Generator
from gancore.nets import DCGANCritic, DCGANGenerator, MLPCritic, MLPGenerator


class ClassifiedScores(NamedTuple):
    """A conditional critic's output: the adversarial scores ``[N]`` and, with the ACGAN head, its
    class logits ``[N, K]`` (None without it). Returned through ``forward``, so it also passes the
    DDP wrapper and ``torch.compile``."""

    scores: Tensor
    class_logits: Tensor | None


class LabelCode(nn.Module):
    """Labels as a vector: one-hot (fixed) or a learned embedding."""

    def __init__(self, num_classes: int, kind: str, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(num_classes, dim) if kind == "learned" else None
        self.dim = dim if kind == "learned" else num_classes

    def forward(self, y: Tensor) -> Tensor:
        if self.embedding is not None:
            return self.embedding(y)
        return F.one_hot(y, self.num_classes).float()


class ConditionalGenerator(Generator):
    """[z, code(y)] -> a DCGAN stack (images) or an MLP (vectors)."""

    def __init__(self, body: nn.Module, code: LabelCode, latent_dim: int) -> None:
        super().__init__()
        self.body, self.code, self.latent_dim = body, code, latent_dim

    @classmethod
    def build(cls, shape: tuple[int, ...], num_classes: int, latent_dim: int, width: int,
              label_code: str, embed_dim: int, mlp_hidden: int, mlp_layers: int) -> ConditionalGenerator:
        code = LabelCode(num_classes, label_code, embed_dim)
        if len(shape) == 1:
            body: nn.Module = MLPGenerator(latent_dim, shape[0], mlp_hidden, mlp_layers, extra_dim=code.dim)
        else:
            body = DCGANGenerator(latent_dim, shape[0], shape[-1], width, extra_dim=code.dim)
        return cls(body, code, latent_dim)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if y is None:
            raise ValueError("a conditional generator needs labels")
        return self.body(torch.cat([z, self.code(y).to(z.dtype)], dim=1))


class ConcatCritic(Critic):
    """Label maps as extra input channels (the seeds' design): one-hot planes of H x W."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, width: int, aux: bool,
                 mlp_hidden: int, mlp_layers: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        if len(shape) == 1:
            self.body: nn.Module = MLPCritic(shape[0], mlp_hidden, mlp_layers, out_dim=1 + num_classes * aux,
                                             extra_dim=num_classes)
        else:
            self.body = DCGANCritic(shape[0], shape[-1], width, norm="batch",
                                    extra_channels=num_classes, out_dim=1 + num_classes * aux)
        self.aux = aux

    def forward(self, x: Tensor, y: Tensor | None = None) -> ClassifiedScores:
        assert y is not None, "a conditional critic needs labels"
        code = F.one_hot(y, self.num_classes).to(x.dtype)
        if x.dim() == 4:
            code = code[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        out = self.body(torch.cat([x, code], dim=1))
        if not self.aux:
            return ClassifiedScores(out, None)
        return ClassifiedScores(out[:, 0], out[:, 1:])


class ProjectionCritic(Critic):
    """Projection discriminator (Miyato & Koyama 2018): psi(phi(x)) + <embed(y), phi(x)>."""

    def __init__(self, shape: tuple[int, ...], num_classes: int, width: int, aux: bool) -> None:
        super().__init__()
        self.body = DCGANCritic(shape[0], shape[-1], width, norm="batch")
        dim = self.body.feature_dim
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        self.classifier = nn.Linear(dim, num_classes) if aux else None

    def forward(self, x: Tensor, y: Tensor | None = None) -> ClassifiedScores:
        assert y is not None, "a conditional critic needs labels"
        h = self.body.features(x)
        out = self.body.head(h).flatten(1).squeeze(1)
        flat = h.flatten(1)
        out = out + (self.embed(y).to(flat.dtype) * flat).sum(1)
        return ClassifiedScores(out, self.classifier(flat) if self.classifier is not None else None)
