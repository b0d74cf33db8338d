"""Config of the very sparse random projector (no torch import)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sublora.core.projector_config import ProjectorConfig


class SparseConfig(ProjectorConfig):
    """Very sparse random projection (Achlioptas; Li, Hastie, Church): k signed entries +-1/sqrt(k) per column."""

    description: ClassVar[str] = (
        "Very sparse P (D x d): each column has k = density * D distinct random rows (default k ~ sqrt(D)) of "
        "value +-1/sqrt(k), one per band of D/k rows, unit column norms, every row and column nonzero; 4 bytes per "
        "nonzero, O(d k) memory and time."
    )
    implementation: ClassVar[str] = "sublora.projectors.sparse:SparseProjector"

    density: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Fraction of nonzero entries in each column of P (k = round(density * D)); default 1/sqrt(D). "
        "k is raised to ceil(D / d) if needed so that every coordinate of theta can be reached.",
    )
