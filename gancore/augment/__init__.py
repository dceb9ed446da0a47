"""Built-in augmentations of what the critic sees: DiffAugment (Zhao et al. 2020) and ADA (Karras et al.
2020). The kernel applies the chosen one (``augment.name``) to the critic's image input in every phase;
see :class:`gancore.Augment` and :mod:`gancore.kernel.augment`.

Both are differentiable (the generator learns through them) and twice differentiable (R1 and the
gradient penalty take them), and draw only from the generator they are given.
"""

from __future__ import annotations

from gancore.augment.ada import ADA, ADASettings, reflect_sample
from gancore.augment.diffaugment import POLICIES, DiffAugment, DiffAugmentSettings

BUILTIN_AUGMENTS = (DiffAugment, ADA)

__all__ = ["ADA", "BUILTIN_AUGMENTS", "POLICIES", "ADASettings", "DiffAugment", "DiffAugmentSettings", "reflect_sample"]
