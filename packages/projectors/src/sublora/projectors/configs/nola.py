"""Config of the NOLA projector (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from sublora.projectors.configs.dense import DenseConfig


class NolaConfig(DenseConfig):
    """NOLA: every LoRA tensor is its init plus a mix of its own seeded random basis tensors.

    Inherits ``chunk_size`` and ``cache_mb`` from the dense projector, which
    generates each tensor's basis; ``cache_mb`` bounds all bases together.
    """

    description: ClassVar[str] = (
        "NOLA: each LoRA tensor (A and B of every module, and any other trainable tensor) moves by "
        "sum_i w_i B_i over k ~ d / #tensors random basis tensors of its own (Gaussian, seeded per tensor); "
        "memory O(k r (m + n)) per module, O(D d / #tensors) per call."
    )
    implementation: ClassVar[str] = "sublora.projectors.nola:NolaProjector"
