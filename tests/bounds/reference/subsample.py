"""Section 4 of docs/bounds.md: upper confidence limits of a population mean from m draws."""

from __future__ import annotations

import math

import numpy as np

from reference.common import Undefined


def hoeffding(z: np.ndarray, R: float, d: float) -> float:
    """UCB = mean(Z) + R sqrt(ln(1/d) / (2m))."""
    m = z.size
    return float(np.mean(z)) + R * math.sqrt(math.log(1.0 / d) / (2.0 * m))


def bernstein(z: np.ndarray, R: float, d: float) -> float:
    """Maurer & Pontil Theorem 4: mean + sqrt(2 s^2 ln(2/d) / m) + 7 R ln(2/d) / (3 (m - 1)), s^2 unbiased."""
    m = z.size
    if m < 2:
        raise Undefined("empirical Bernstein needs m >= 2 draws (section 4)")
    mean = float(np.mean(z))
    s2 = float(np.sum((z - mean) ** 2)) / (m - 1)
    log = math.log(2.0 / d)
    return mean + math.sqrt(2.0 * s2 * log / m) + 7.0 * R * log / (3.0 * (m - 1))


def ucb(z: np.ndarray, R: float, d: float, kind: str) -> float:
    """The estimator's ``subsample_bound`` choice."""
    if kind == "hoeffding":
        return hoeffding(np.asarray(z, dtype=np.float64), R, d)
    if kind == "bernstein":
        return bernstein(np.asarray(z, dtype=np.float64), R, d)
    raise ValueError(f"unknown subsample bound {kind!r}")
