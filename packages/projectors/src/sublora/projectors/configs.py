"""Configs of the built-in projectors (entry points of ``sublora.projectors``).

Cheap to import: no torch here. Each config names its implementation, which
is imported only when the projector is built.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sublora.core.projector_config import ProjectorConfig


class DenseConfig(ProjectorConfig):
    """P = G / sqrt(D), G_ij ~ N(0, 1): the reference's LazyRandom."""

    description: ClassVar[str] = (
        "Dense Gaussian P (D x d), entries N(0, 1/D), regenerated from the seed in row chunks; O(D d) time per call."
    )
    implementation: ClassVar[str] = "sublora.projectors.dense:DenseProjector"

    chunk_size: int | None = Field(
        None,
        ge=1,
        description="Rows of P generated at once (rounded to whole generator blocks); "
        "default: as many as fit in 64 MB. Does not change P, only memory and speed.",
    )
    cache_mb: float = Field(
        256.0,
        ge=0,
        description="Keep the whole of P in memory when it takes at most this many MB (0: never). "
        "Does not change P, only speed.",
    )


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
