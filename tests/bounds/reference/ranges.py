"""Sections 1-2 of docs/bounds.md: the range of the smoothed loss and the range check."""

from __future__ import annotations

import math

import numpy as np

from reference.common import Refused

#: Section 2: "float32 rounding of 1e-3 bits allowed".
TOLERANCE = 1e-3


def lo(a: float, V: int) -> float:
    """Section 1: lo(a) = -log2(1 - a + a/V)."""
    return -math.log2(1.0 - a + a / V)


def hi(a: float, V: int) -> float:
    """Section 1: hi(a) = log2(V/a)."""
    return math.log2(V / a)


def Delta(a: float, V: int) -> float:
    """Section 1: Delta(a) = hi(a) - lo(a) = log2(1 + (1 - a) V / a)."""
    return math.log2(1.0 + (1.0 - a) * V / a)


def Delta_F(a: float, V: int) -> float:
    """Section 1 / 5.2: the Freedman range log2(V/a)."""
    return math.log2(V / a)


def random_guess_bpd(V: int) -> float:
    """Not defined in docs/bounds.md (section 9 uses it): the uniform predictor's log2 V bits."""
    return math.log2(V)


def random_guess_topk(k: int, V: int) -> float:
    """Not defined in docs/bounds.md: the top-k error of a uniformly random ranking, 1 - min(k, V)/V."""
    return 1.0 - min(k, V) / V


def require_within(values, low: float, high: float, what: str) -> None:
    """Section 2: every value (the means and the per-token extremes) lies in [low, high] up to 1e-3."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise Refused(f"{what}: empty or non-finite")
    if values.min() < low - TOLERANCE or values.max() > high + TOLERANCE:
        raise Refused(f"{what}: [{values.min()}, {values.max()}] outside [{low}, {high}]")


def require_losses(means: np.ndarray, extremes: np.ndarray | None, alphas, V: int, what: str) -> None:
    """Section 2: per alpha, the unit means and the smallest/largest per-token loss in [lo(a), hi(a)]."""
    for i, a in enumerate(alphas):
        require_within(means[i], lo(a, V), hi(a, V), f"{what} means at alpha {a}")
        if extremes is not None:
            require_within(extremes[i], lo(a, V), hi(a, V), f"{what} extremes at alpha {a}")
