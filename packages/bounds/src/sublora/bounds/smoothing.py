"""Ranges of the smoothed loss (bounds.md section 1), all in bits.

The smoothed predictor ``p_h = (1 - alpha) p_theta + alpha / V`` makes the
per-token loss ``-log2 p_h`` bounded; every bound pays for that range.
"""

from __future__ import annotations

import math

from sublora.core.errors import BoundError


def _check(alpha: float, V: int) -> None:
    if not 0.0 < alpha <= 1.0:
        raise BoundError(f"Smoothing alpha must lie in (0, 1]; got {alpha}.")
    if V < 2:
        raise BoundError(f"Vocabulary size V must be at least 2; got {V}.")


def loss_range(alpha: float, V: int) -> tuple[float, float]:
    """(lo, hi) of the smoothed loss: lo = -log2(1 - alpha + alpha/V), hi = log2(V/alpha)."""
    _check(alpha, V)
    return -math.log2(1.0 - alpha + alpha / V), math.log2(V / alpha)


def delta_range(alpha: float, V: int) -> float:
    """Delta(alpha) = hi - lo = log2(1 + (1 - alpha) V / alpha): the width of the loss range.

    V = 50257: Delta(0.1) = 18.7870, Delta(0.5) = 15.6171, Delta(1e-4) = 28.9046.
    """
    _check(alpha, V)
    return math.log2(1.0 + (1.0 - alpha) * V / alpha)


def freedman_range(alpha: float, V: int) -> float:
    """log2(V / alpha): bounds X_k - Y_k when Y_k >= 0 (the Freedman bound's Delta)."""
    _check(alpha, V)
    return math.log2(V / alpha)


def random_guess_bpd(V: int) -> float:
    """Bits per token of the uniform predictor: log2 V."""
    _check(1.0, V)
    return math.log2(V)


def random_guess_topk(k: int, V: int) -> float:
    """Top-k error rate of a uniformly random ranking: 1 - min(k, V) / V."""
    _check(1.0, V)
    if k < 1:
        raise BoundError(f"Top-k needs k >= 1; got {k}.")
    return 1.0 - min(k, V) / V
