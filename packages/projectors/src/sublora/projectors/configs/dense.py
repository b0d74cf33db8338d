"""Config of the dense Gaussian projector (no torch import)."""

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
