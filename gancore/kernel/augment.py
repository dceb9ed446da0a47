"""How the kernel applies ``augment.name`` (:class:`gancore.Augment`) to every image a critic sees.

The critic of every phase's :class:`~gancore.Networks` view is wrapped (:class:`AugmentedCritic`): a call
``critic(x, *rest)`` becomes ``critic(augment(x), *rest)``, so real and generated images are augmented in
the critic's and the generator's phases alike, for any variant, with no variant code. Only the first
positional input is augmented (cGAN's labels, a two-input critic's second input are not); a critic that
is a ``ModuleDict`` (CycleGAN's D_A, D_B) has each of its entries wrapped; other methods of the critic
(VAE-GAN's ``features``) run on the images as they are. Images stacked along the channels (pix2pix's
``cat([A, B])``) move together and get their colour changes per image.

Penalties (R1, gradient penalty) call the same wrapped critic, so they see augmented images unless
``augment.penalties = false``. Draws come from the run's own ``rng.augment`` stream, checkpointed with
the augmentation's state (ADA's p), so resume stays bitwise. For adaptive augmentations the critic
loss's first argument (the critic's outputs on real images) is observed in the critic's phase.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gancore.errors import TrainingError
from gancore.interfaces import Augment, Loss


class CriticAugment:
    """One run's augmentation: the plugin, its random stream and the switches the kernel flips."""

    def __init__(self, augment: Augment, rng: torch.Generator, channels: int, device: torch.device,
                 images_per_update: int) -> None:
        self.augment = augment
        self.rng = rng
        self.channels = channels
        self.images_per_update = images_per_update
        self.active = True
        """False while penalties run with ``augment.penalties = false``."""
        self.observing = False
        """True during the critic's phase: an adaptive augmentation reads the critic's real outputs."""
        augment.setup(device, channels)

    @property
    def name(self) -> str:
        return type(self.augment).name

    def __call__(self, x: Tensor) -> Tensor:
        if not self.active:
            return x
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise TrainingError(f"augment: {self.name} augments image batches [N, C, H, W], and the critic "
                                f"was called on {shape}")
        c = x.shape[1]
        groups = c // self.channels if c % self.channels == 0 else 1
        return self.augment.apply(x, self.rng, groups)

    def wrap(self, critic: nn.Module) -> nn.Module:
        """The critic as the phases see it: every image input augmented."""
        return AugmentedCritic(critic, self)

    def tap(self, loss: Loss) -> None:
        """Let an adaptive augmentation observe the critic's outputs on real images: the first argument of
        every ``critic_loss`` the variant computes in the critic's phase (the :class:`gancore.Loss` contract)."""
        if not self.augment.adaptive:
            return
        original = loss.critic_loss

        def critic_loss(real_out: Tensor, fake_out: Tensor, *args: Any, **kwargs: Any) -> Tensor:
            if self.observing:
                self.augment.observe(real_out)
            return original(real_out, fake_out, *args, **kwargs)

        loss.critic_loss = critic_loss  # type: ignore[method-assign]  # the instance's, for this run

    def after_critic_update(self, critic_updates: int, mean: Any) -> None:
        self.augment.adjust(critic_updates, self.images_per_update, mean)

    # -- checkpoint ---------------------------------------------------------------------------
    def state(self) -> dict[str, Tensor]:
        tensors = {f"augment.{key}": value.detach() for key, value in self.augment.state().items()}
        tensors["rng.augment"] = self.rng.get_state()
        return tensors

    def restore(self, tensors: dict[str, Tensor]) -> None:
        if "rng.augment" not in tensors:
            raise KeyError("rng.augment (the checkpoint was written without augment.name; resume it without)")
        self.rng.set_state(tensors["rng.augment"])
        own = {key[len("augment."):]: value for key, value in tensors.items() if key.startswith("augment.")}
        missing = sorted(set(self.augment.state()) - set(own))
        if missing:
            raise KeyError(f"augment.{missing[0]} (the checkpoint's augmentation was not {self.name})")
        self.augment.load_state(own)

    def log_values(self) -> dict[str, Tensor]:
        return {f"augment/{key}": value for key, value in self.augment.log_values().items()}


class AugmentedCritic(nn.Module):
    """``critic`` with its first input augmented; indexing (a ``ModuleDict`` of critics) gives wrapped entries,
    every other attribute is the critic's own."""

    def __init__(self, critic: nn.Module, augment: CriticAugment) -> None:
        super().__init__()
        self.inner = critic
        object.__setattr__(self, "_augment", augment)  # not a submodule: no state of the module
        object.__setattr__(self, "_entries", {})

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Any:
        return self.inner(self._augment(x), *args, **kwargs)

    def __getitem__(self, key: str) -> nn.Module:
        entries: dict[str, nn.Module] = self._entries
        if key not in entries:
            entries[key] = AugmentedCritic(self.inner[key], self._augment)  # type: ignore[index]
        return entries[key]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)
