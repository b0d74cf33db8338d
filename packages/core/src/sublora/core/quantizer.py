"""The quantizer interface: real vector -> symbols + a small fp16 codebook."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field

from sublora.core.component import ComponentConfig


class QuantizerConfig(ComponentConfig):
    kind: ClassVar[str] = "quantizer"
    levels: int = Field(11, ge=2, le=255, description="Number of codebook entries (centroids).")


@dataclass(frozen=True)
class QuantizedVector:
    """Symbols index into an fp16 codebook; ``values`` is exactly what the model uses."""

    symbols: np.ndarray  # (n,) int64 in [0, len(codebook))
    codebook: np.ndarray  # (levels,) float16

    @property
    def values(self) -> np.ndarray:
        return self.codebook.astype(np.float32)[self.symbols]


class Quantizer(ABC):
    """Fit centroids to a vector, then map every entry to its nearest centroid."""

    def __init__(self, config: QuantizerConfig):
        self.config = config

    @abstractmethod
    def fit(self, values: np.ndarray, seed: int) -> np.ndarray:
        """Return up to ``levels`` centroids (float) for ``values``; deterministic given seed."""

    def quantize(self, values: np.ndarray, seed: int = 0) -> QuantizedVector:
        values = np.asarray(values, dtype=np.float64).ravel()
        centroids = np.asarray(self.fit(values, seed), dtype=np.float64)
        codebook = np.unique(centroids.astype(np.float16))  # fp16 is what the file stores
        codebook = codebook[np.isfinite(codebook)]
        if codebook.size == 0:
            codebook = np.zeros(1, dtype=np.float16)
        symbols = nearest(values, codebook.astype(np.float64))
        return QuantizedVector(symbols.astype(np.int64), codebook.astype(np.float16))


def nearest(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (centroids sorted ascending); ties go to the lower one."""
    idx = np.clip(np.searchsorted(centroids, values), 1, max(len(centroids) - 1, 1))
    if len(centroids) == 1:
        return np.zeros(values.shape, dtype=np.int64)
    left, right = centroids[idx - 1], centroids[idx]
    return np.where(np.abs(values - left) <= np.abs(right - values), idx - 1, idx).astype(np.int64)
