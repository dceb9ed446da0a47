"""The plain loop of pytorch/examples' DCGAN (``dcgan/main.py``), for the peer benchmark (``peer.py``).

Written for this benchmark to do what that example does, operation for operation (not copied from it):
its networks (transposed convolutions ngf*8 -> ngf with BatchNorm and ReLU, tanh; strided convolutions
ndf -> ndf*8 with LeakyReLU 0.2, BatchNorm from the second, a sigmoid), N(0, 0.02) initialisation,
BCELoss, Adam(lr 2e-4, betas (0.5, 0.999)) for both, and its iteration: the critic's gradients from
the real batch and from ``G(z).detach()`` (two backward passes), its step; then the generator's loss
on the *same* fake batch through the updated critic (one generator forward per iteration; the critic's
weights receive gradients there too, as nothing freezes them), its step; the logged values read with
``.item()`` every iteration. Only the data differ: batches are drawn from a tensor in memory (as
gancore's in-memory sampler does) instead of a torchvision DataLoader, and the image channels are the
data's.
"""

from __future__ import annotations

import torch
from torch import nn


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def generator(nz: int, ngf: int, nc: int) -> nn.Sequential:
    widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
    layers: list[nn.Module] = []
    cin = nz
    for i, width in enumerate(widths):
        layers += [nn.ConvTranspose2d(cin, width, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False),
                   nn.BatchNorm2d(width), nn.ReLU(True)]
        cin = width
    layers += [nn.ConvTranspose2d(cin, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def critic(nc: int, ndf: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for width in (ndf * 2, ndf * 4, ndf * 8):
        layers += [nn.Conv2d(width // 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width),
                   nn.LeakyReLU(0.2, inplace=True)]
    layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(), nn.Flatten(0)]
    return nn.Sequential(*layers)


class ExamplesDCGAN:
    """The example's set-up, and one iteration of its training loop per :meth:`step`."""

    def __init__(self, x: torch.Tensor, batch_size: int = 64, nz: int = 100, ngf: int = 64, ndf: int = 64,
                 lr: float = 2e-4, beta1: float = 0.5, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.x, self.batch_size, self.nz = x.to(self.device), batch_size, nz
        self.g = generator(nz, ngf, x.shape[1]).to(self.device).apply(_init)
        self.d = critic(x.shape[1], ndf).to(self.device).apply(_init)
        self.bce = nn.BCELoss()
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(beta1, 0.999))
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(beta1, 0.999))

    def step(self) -> dict[str, float]:
        real = self.x[torch.randint(len(self.x), (self.batch_size,), device=self.device)]
        ones = torch.ones(len(real), device=self.device)
        zeros = torch.zeros(len(real), device=self.device)
        self.d.zero_grad()
        d_real = self.d(real)
        loss_real = self.bce(d_real, ones)
        loss_real.backward()
        fake = self.g(torch.randn(len(real), self.nz, 1, 1, device=self.device))
        d_fake = self.d(fake.detach())
        loss_fake = self.bce(d_fake, zeros)
        loss_fake.backward()
        self.opt_d.step()
        self.g.zero_grad()
        d_fake_g = self.d(fake)
        loss_g = self.bce(d_fake_g, ones)
        loss_g.backward()
        self.opt_g.step()
        return {"loss_d": (loss_real + loss_fake).item(), "loss_g": loss_g.item(), "d_x": d_real.mean().item(),
                "d_g_z1": d_fake.mean().item(), "d_g_z2": d_fake_g.mean().item()}
