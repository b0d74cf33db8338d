"""An evenly spaced grid quantizer: ``levels`` points from -max|w| to max|w|.

The grid is the method (a uniform scalar quantizer), not a fit, so the config declares
``fixed_codebook = True``: quantization-aware fine-tuning then trains w through the rounding but
keeps every grid point, and the certified codebook is still this grid.
"""

from __future__ import annotations

import numpy as np

from sublora.core.quantizer import Quantizer


class GridQuantizer(Quantizer):
    def fit(self, values: np.ndarray, seed: int) -> np.ndarray:
        """``levels`` evenly spaced centroids on [-max|w|, max|w|] (one at 0 if w is all zero); seed unused."""
        bound = float(np.max(np.abs(values))) if values.size else 0.0
        if bound == 0.0:
            return np.zeros(1)
        return np.linspace(-bound, bound, self.config.levels)
