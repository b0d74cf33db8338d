"""Config of the Kronecker (rdkron) projector (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from sublora.core.projector_config import ProjectorConfig


class RdkronConfig(ProjectorConfig):
    """Rounded double Kronecker projector; variant ``qr`` orthonormalizes its random factors."""

    description: ClassVar[str] = (
        "P = Perm * BlockDiag(R1 (x) R2, E): Kronecker factors of about sqrt(D) x sqrt(d), a small dense "
        "leftover block, a random row permutation; memory O(sqrt(D d) + D). Variant qr: orthonormal factors "
        "(P^T P = I exactly when D >= d)."
    )
    implementation: ClassVar[str] = "sublora.projectors.rdkron:RdkronProjector"
    variants: ClassVar[tuple[str, ...]] = ("qr",)
    default_variant: ClassVar[str | None] = None  # None: plain Gaussian factors
