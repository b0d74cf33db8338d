"""The quantizer interface: real vector -> symbols + a small fp16 codebook."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from sublora.core.component import ComponentConfig

if TYPE_CHECKING:  # numpy is imported where it is used, so importing the config (`sublora plugins`) stays cheap
    import numpy as np


#: Tag of the quantizers' seed streams (docs/bounds.md section 3): "quan".
QUANTIZER_STREAM = 0x7175616E


def tensor_seed(bound_seed: int, index: int) -> int:
    """The seed a quantizer gets for the ``index``-th coded tensor: a stream of its own, derived from
    ``bound.seed`` through numpy's SeedSequence with a tag. (``bound.seed + index`` handed the first tensor
    the very generator, ``default_rng(bound.seed)``, that draws the evaluated token blocks, and the second
    the one that draws the documents: the hypothesis then depended on the sample it is evaluated on.)"""
    import numpy as np

    state = np.random.SeedSequence([int(bound_seed), QUANTIZER_STREAM, int(index)]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))  # a non-negative int64


class QuantizerConfig(ComponentConfig):
    """``levels`` is the codebook size asked for; ``bound.levels_grid`` builds one quantizer per candidate size.

    ``fixed_codebook``: the codebook ``fit`` returns is part of the method (e.g. an evenly spaced
    grid), so quantization-aware fine-tuning (``sublora.bounds.qat``) keeps it exactly and only lets
    the values change cluster. False (the default): QAT trains the codebook entries too, so the
    certified codebook is in general neither evenly spaced nor of the original size.
    """

    kind: ClassVar[str] = "quantizer"
    fixed_codebook: ClassVar[bool] = False
    levels: int = Field(11, ge=2, le=255, description="Number of codebook entries (centroids).")


@dataclass(frozen=True)
class QuantizedVector:
    """Symbols index into an fp16 codebook; ``values`` is exactly what the model uses.

    ``fixed_codebook`` carries the quantizer's declaration to QAT: the codebook must not move.
    """

    symbols: np.ndarray  # (n,) int64 in [0, len(codebook))
    codebook: np.ndarray  # (levels,) float16
    fixed_codebook: bool = False

    @property
    def values(self) -> np.ndarray:
        import numpy as np

        return self.codebook.astype(np.float32)[self.symbols]


class Quantizer(ABC):
    """Fit centroids to a vector, then map every entry to its nearest centroid."""

    def __init__(self, config: QuantizerConfig):
        self.config = config

    @abstractmethod
    def fit(self, values: np.ndarray, seed: int) -> np.ndarray:
        """Return up to ``levels`` centroids (float) for ``values``; deterministic given seed."""

    def quantize(self, values: np.ndarray, seed: int = 0) -> QuantizedVector:
        import numpy as np

        values = np.asarray(values, dtype=np.float64).ravel()
        centroids = np.asarray(self.fit(values, seed), dtype=np.float64)
        codebook = np.unique(centroids.astype(np.float16))  # fp16 is what the file stores
        codebook = codebook[np.isfinite(codebook)]
        if codebook.size == 0:
            codebook = np.zeros(1, dtype=np.float16)
        symbols = nearest(values, codebook.astype(np.float64))
        return QuantizedVector(symbols.astype(np.int64), codebook.astype(np.float16),
                               fixed_codebook=bool(self.config.fixed_codebook))


def nearest(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (centroids sorted ascending); ties go to the lower one."""
    import numpy as np

    idx = np.clip(np.searchsorted(centroids, values), 1, max(len(centroids) - 1, 1))
    if len(centroids) == 1:
        return np.zeros(values.shape, dtype=np.int64)
    left, right = centroids[idx - 1], centroids[idx]
    return np.where(np.abs(values - left) <= np.abs(right - values), idx - 1, idx).astype(np.int64)
