"""Image-to-image translation helpers (public API): two-domain data sources, the orientation
search that aligns the domains before unpaired training, and the translation metrics.

- :class:`Unpaired` (``data.name = "unpaired"``: trainA/ and trainB/ folders, CycleGAN's layout),
  :class:`DigitsPair` (``digits-pair``: digits and a restyled copy, with hidden labels) and
  :class:`Paired` (``paired``: aligned pairs in pix2pix's A|B or A/ B/ layouts);
- :func:`find_orientation`, :class:`Orientation`, :class:`Oriented` (a generator behind a fixed
  turn/mirror of its input; ``forward(x, transform=False)`` runs it without),
  :func:`orient_generators` (for :meth:`gancore.Variant.initialize`), :func:`orientation_setting`
  and :data:`OrientMode` (a variant's ``orient = "auto" | "off"`` setting);
- :class:`Preservation` and :class:`Reconstruction` (``gancore eval --metric ...``).
"""

from __future__ import annotations

from typing import Any

from gancore.translation.metrics import TRANSLATION_METRICS, Preservation, Reconstruction
from gancore.translation.orient import (
    Orientation,
    OrientMode,
    find_orientation,
    orient_generators,
    orientation_setting,
)
from gancore.translation.sources import DigitsPair, DigitsRestore, Paired, Unpaired, gaussian_blur, restyle


def __getattr__(name: str) -> Any:
    """:class:`Oriented` (an ``nn.Module`` subclass, so it needs torch) loads on first use."""
    if name == "Oriented":
        from gancore.translation.oriented import Oriented

        return Oriented
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "TRANSLATION_METRICS",
    "DigitsRestore",
    "DigitsPair",
    "OrientMode",
    "Orientation",
    "Oriented",
    "Paired",
    "Preservation",
    "Reconstruction",
    "Unpaired",
    "find_orientation",
    "gaussian_blur",
    "orient_generators",
    "orientation_setting",
    "restyle",
]
