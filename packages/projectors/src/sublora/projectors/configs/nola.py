"""Config of the NOLA projector (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from sublora.projectors.configs.blocks import RandomBlockConfig


class NolaConfig(RandomBlockConfig):
    """NOLA: every LoRA tensor is its init plus a mix of its own seeded random basis tensors.

    ``matrix`` picks how each tensor's basis is drawn: 'dense' (iid Gaussian, as NOLA; ``chunk_size`` and
    ``cache_mb`` as the dense projector, ``cache_mb`` bounding all bases together) or 'fastfood' (the basis
    tensors are the columns of a Fastfood transform: O(D) memory, O(D log k) time per call).
    """

    description: ClassVar[str] = (
        "NOLA: each LoRA tensor (A and B of every module, and any other trainable tensor) moves by "
        "sum_i w_i B_i over k ~ d / #tensors random basis tensors of its own (Gaussian, seeded per tensor); "
        "memory O(k r (m + n)) per module, O(D d / #tensors) per call (matrix=fastfood: O(D) memory, O(D log k))."
    )
    implementation: ClassVar[str] = "sublora.projectors.nola:NolaProjector"
