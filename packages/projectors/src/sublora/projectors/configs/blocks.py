"""Options shared by projectors assembled from random blocks (film, nola): which random matrix, and its cache."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sublora.projectors.configs.dense import DenseConfig


class RandomBlockConfig(DenseConfig):
    """Dense options (``chunk_size``, ``cache_mb``) plus ``matrix``: the kind of random block."""

    matrix: Literal["dense", "fastfood"] = Field(
        "dense",
        description="Random matrix of each block: 'dense' = iid Gaussian, as the reference (O(rows x d) time "
        "per call); 'fastfood' = a Fastfood transform with Gaussian-like rows, O(rows) memory and "
        "O(rows log d) time, for large layouts. Both have E[P^T P] = I.",
    )

    @model_validator(mode="after")
    def _dense_options_need_dense(self) -> "RandomBlockConfig":
        unused = sorted(self.model_fields_set & {"chunk_size", "cache_mb"})
        if self.matrix != "dense" and unused:
            raise ValueError(f"{', '.join(unused)} only apply to matrix='dense' (got matrix={self.matrix!r})")
        return self
