"""Configs of the built-in quantizers, coders and bound estimators.

Registered through entry points; cheap to import (pydantic only). Each names
its implementation, imported only when the component is built.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from sublora.core.bound import BoundConfig
from sublora.core.coder import CoderConfig
from sublora.core.quantizer import QuantizerConfig

def _subsample_fraction() -> float:
    return Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Share of delta spent on the Hoeffding term(s) of subsampled blocks "
        "(unused when every block is evaluated).",
    )


class UniformQuantizerConfig(QuantizerConfig):
    description: ClassVar[str] = "Uniform bins on [-max|w|, max|w|]; each centroid is the mean of its bin."
    implementation: ClassVar[str] = "sublora.bounds.quantizers:UniformQuantizer"


class KMeansQuantizerConfig(QuantizerConfig):
    description: ClassVar[str] = "1-D k-means: seeded k-means++ initialisation, then Lloyd iterations."
    implementation: ClassVar[str] = "sublora.bounds.quantizers:KMeansQuantizer"

    max_iter: int = Field(100, ge=1, description="Maximum Lloyd iterations (stops earlier once centroids settle).")


class ArithmeticCoderConfig(CoderConfig):
    description: ClassVar[str] = "Range coder (constriction); the payload stores the empirical symbol counts."
    implementation: ClassVar[str] = "sublora.bounds.coders:ArithmeticCoder"


class SubsamplingBoundConfig(BoundConfig):
    description: ClassVar[str] = "IID document-level bound on a subsampled empirical risk (Lotfi et al. 2024a)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.subsampling:SubsamplingBound"


class AzumaBoundConfig(BoundConfig):
    description: ClassVar[str] = "Token-level martingale bound, Azuma form (Lotfi et al. 2024b)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.azuma:AzumaBound"

    subsample_delta_fraction: float = _subsample_fraction()


class FreedmanBoundConfig(BoundConfig):
    description: ClassVar[str] = "Token-level empirical Freedman bound over a grid of lambdas (Finzi et al. 2025)."
    implementation: ClassVar[str] = "sublora.bounds.estimators.freedman:FreedmanBound"

    grid_size: int = Field(
        1000, ge=1, description="|K|: number of lambdas, geometrically spaced in [lambda_min, lambda_max]."
    )
    lambda_min: float = Field(1e-4, gt=0.0, lt=1.0, description="Smallest lambda of the grid.")
    lambda_max: float = Field(0.999, gt=0.0, lt=1.0, description="Largest lambda of the grid.")
    subsample_delta_fraction: float = _subsample_fraction()

    @model_validator(mode="after")
    def _grid_order(self) -> "FreedmanBoundConfig":
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min ({self.lambda_min}) must not exceed lambda_max ({self.lambda_max})")
        return self
