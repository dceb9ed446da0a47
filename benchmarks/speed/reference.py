"""Plain PyTorch training loops, written the way a careful user would, doing the same work as
gancore's variants: the same networks (built once, copied), the same data on the device, the same
algorithm (fresh noise for the generator step, the critic's parameters frozen during it, losses
in float32, no ``.item()`` per step, ``zero_grad(set_to_none=True)``), autocast and GradScaler
when a reduced precision is asked for.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Loop:
    def __init__(self, x: Tensor, batch: int, device: torch.device, precision: str, x_b: Tensor | None = None):
        self.x, self.x_b, self.batch, self.device = x.to(device), None if x_b is None else x_b.to(device), batch, device
        self.precision = precision
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scalers = {}

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def scaler(self, name: str) -> torch.amp.GradScaler:
        if name not in self.scalers:
            self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        return self.scalers[name]

    def real(self, x: Tensor | None = None) -> Tensor:
        x = self.x if x is None else x
        return x[torch.randint(len(x), (self.batch,), device=self.device)]

    def update(self, name: str, loss: Tensor, opt: torch.optim.Optimizer) -> None:
        scaler = self.scaler(name)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def _freeze(module: nn.Module, frozen: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(not frozen)


class DCGANLoop(Loop):
    """BCE-with-logits GAN, Adam 2e-4 (0.5, 0.999)."""

    def __init__(self, g: nn.Module, d: nn.Module, latent: int, **kw):
        super().__init__(**kw)
        self.g, self.d, self.latent = g, d, latent
        self.opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))

    def step(self) -> None:
        g, d, b = self.g, self.d, self.batch
        real = self.real()
        self.opt_d.zero_grad(set_to_none=True)
        _freeze(g, True)
        with self.autocast():
            with torch.no_grad():
                fake = g(torch.randn(b, self.latent, device=self.device))
            out_real, out_fake = d(real).float(), d(fake).float()
            loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real)) + \
                F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        self.update("d", loss_d, self.opt_d)
        _freeze(g, False)
        self.opt_g.zero_grad(set_to_none=True)
        _freeze(d, True)
        with self.autocast():
            out = d(g(torch.randn(b, self.latent, device=self.device))).float()
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        self.update("g", loss_g, self.opt_g)
        _freeze(d, False)


class WGANGPLoop(Loop):
    """WGAN-GP: 5 critic steps with the gradient penalty (lambda 10), Adam 1e-4 (0, 0.9)."""

    def __init__(self, g: nn.Module, d: nn.Module, latent: int, n_critic: int = 5, **kw):
        super().__init__(**kw)
        self.g, self.d, self.latent, self.n_critic = g, d, latent, n_critic
        self.opt_g = torch.optim.Adam(g.parameters(), 1e-4, betas=(0.0, 0.9))
        self.opt_d = torch.optim.Adam(d.parameters(), 1e-4, betas=(0.0, 0.9))

    def critic_step(self, penalty: bool = True) -> None:
        g, d, b = self.g, self.d, self.batch
        real = self.real()
        self.opt_d.zero_grad(set_to_none=True)
        _freeze(g, True)
        with self.autocast():
            with torch.no_grad():
                fake = g(torch.randn(b, self.latent, device=self.device))
            loss = d(fake).float().mean() - d(real).float().mean()
            if penalty:
                alpha = torch.rand(b, 1, 1, 1, device=self.device)
                mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                scaler = self.scaler("d")
                out = d(mixed).float().sum()
                if scaler.is_enabled():  # PyTorch's AMP gradient-penalty recipe
                    (grad,) = torch.autograd.grad(scaler.scale(out), mixed, create_graph=True)
                    grad = grad.float() / scaler.get_scale()
                else:
                    (grad,) = torch.autograd.grad(out, mixed, create_graph=True)
                loss = loss + 10.0 * (grad.float().flatten(1).norm(2, dim=1) - 1).pow(2).mean()
        self.update("d", loss, self.opt_d)
        _freeze(g, False)

    def step(self) -> None:
        for _ in range(self.n_critic):
            self.critic_step()
        self.opt_g.zero_grad(set_to_none=True)
        _freeze(self.d, True)
        with self.autocast():
            loss = -self.d(self.g(torch.randn(self.batch, self.latent, device=self.device))).float().mean()
        self.update("g", loss, self.opt_g)
        _freeze(self.d, False)


class CycleGANLoop(Loop):
    """CycleGAN: LSGAN losses, cycle L1 (lambda) both ways, identity 0.5 lambda, history pools,
    Adam 2e-4 (0.5, 0.999); G_ab and G_ba share one optimizer, D_a and D_b another."""

    def __init__(self, gens: nn.ModuleDict, critics: nn.ModuleDict, cycle: float, **kw):
        super().__init__(**kw)
        self.gens, self.critics, self.cycle = gens, critics, cycle
        self.opt_g = torch.optim.Adam(gens.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam([p for p in critics.parameters() if p.requires_grad], 2e-4, betas=(0.5, 0.999))

    def step(self) -> None:
        g, d, lam = self.gens, self.critics, self.cycle
        a, b = self.real(self.x), self.real(self.x_b)
        self.opt_d.zero_grad(set_to_none=True)
        _freeze(g, True)
        with self.autocast():
            with torch.no_grad():
                fake_b, fake_a = d["pool_b"](g["a2b"](a)), d["pool_a"](g["b2a"](b))
            loss = sum(0.5 * (d[k](real).float() - 1).pow(2).mean() + 0.5 * d[k](fake).float().pow(2).mean()
                       for k, real, fake in (("a", a, fake_a), ("b", b, fake_b)))
        self.update("d", loss, self.opt_d)
        _freeze(g, False)
        self.opt_g.zero_grad(set_to_none=True)
        _freeze(d, True)
        with self.autocast():
            fake_b, fake_a = g["a2b"](a), g["b2a"](b)
            loss = (0.5 * (d["b"](fake_b).float() - 1).pow(2).mean() + 0.5 * (d["a"](fake_a).float() - 1).pow(2).mean()
                    + lam * ((g["b2a"](fake_b) - a).abs().mean() + (g["a2b"](fake_a) - b).abs().mean())
                    + 0.5 * lam * ((g["a2b"](b) - b).abs().mean() + (g["b2a"](a) - a).abs().mean()))
        self.update("g", loss, self.opt_g)
        _freeze(d, False)
