"""A generator behind a fixed orientation change of its input (see :mod:`gancore.translation.orient`).

Apart from ``orient.py`` because an ``nn.Module`` subclass imports torch when it is defined.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from gancore.translation.orient import apply_orientation, orientation_matrix, quarter_turn, turn

__all__ = ["Oriented"]


class Oriented(nn.Module):
    """``net`` applied after a fixed orientation change of its input.

    The change is a ``[2, 3]`` sampling matrix kept as a buffer (so checkpoints, resume, EMA and
    ``gancore translate`` carry it); the identity is skipped, quarter turns and mirrors move
    pixels exactly (``torch.rot90``/``flip``), other angles are resampled bilinearly.
    ``forward(x, transform=False)`` runs ``net`` alone, for losses stated in the output domain's
    frame (CycleGAN's identity loss). It is a keyword of ``forward``, not a method of its own, so it
    also works through the DDP wrapper the kernel puts around the updated network under
    ``--nproc`` (DDP synchronises gradients only for calls of the module itself).
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("matrix", orientation_matrix(0.0))
        self._quarter: tuple[int, bool] | None = (0, False)

    def set_matrix(self, matrix: Tensor) -> None:
        self.matrix.copy_(matrix)
        self._refresh()

    def _refresh(self) -> None:
        self._quarter = quarter_turn(self.matrix)

    @property
    def active(self) -> bool:
        """Whether the input is changed at all (the matrix is not the identity)."""
        return self._quarter != (0, False)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh()

    def forward(self, x: Tensor, y: Tensor | None = None, *, transform: bool = True) -> Tensor:
        """``net`` after the orientation change (``transform=False``: without it)."""
        if transform and self.active:
            x = apply_orientation(x, self.matrix) if self._quarter is None else turn(x, *self._quarter)
        return self.net(x) if y is None else self.net(x, y)
