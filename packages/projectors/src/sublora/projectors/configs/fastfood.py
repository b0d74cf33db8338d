"""Config of the Fastfood projector (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from sublora.core.projector_config import ProjectorConfig


class FastfoodConfig(ProjectorConfig):
    """Fastfood (Le, Sarlos, Smola 2013): stacked blocks S H G Pi H B of size d' = 2^ceil(log2 d)."""

    description: ClassVar[str] = (
        "Fastfood P: ceil(D / d') stacked blocks sqrt(d'/D) S H G Pi H B (H Walsh-Hadamard, B signs, G Gaussian, "
        "Pi a permutation, S chi row norms), d' = 2^ceil(log2 d); E[P^T P] = I; O(D) memory, O(D log d') time."
    )
    implementation: ClassVar[str] = "sublora.projectors.fastfood:FastfoodProjector"
