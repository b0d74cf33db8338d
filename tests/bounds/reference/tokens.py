"""Section 5 of docs/bounds.md: the token-level martingale bounds (target ``token_bpd``)."""

from __future__ import annotations

import math

import numpy as np

from reference import ranges
from reference.common import Result
from reference.complexity import div_nats
from reference.subsample import ucb


def _best(per_alpha: list[tuple[float, float, float]]) -> int:
    """Index of the smallest B(a) (the first on a tie)."""
    return int(np.argmin([v for v, _, _ in per_alpha]))


def azuma(loss: np.ndarray, alphas, V: int, n: int, sampled: bool, C: float, delta: float,
          f: float = 0.5, kind: str = "bernstein") -> Result:
    """Section 5.1. ``loss``: (|A|, m) block means; n = total_blocks x block_size training tokens.

    all blocks:  B(a) = mean_b loss[a, b] + Delta(a) sqrt((div + ln(1/delta)) / (2n))
    sampled:     B(a) = UCB(loss[a, :], Delta(a), f delta / |A|) + Delta(a) sqrt((div + ln(1/((1 - f) delta))) / (2n))
    """
    A = len(alphas)

    def B(a: int, C_bits: float) -> float:
        D = ranges.Delta(alphas[a], V)
        if sampled:
            mean, d1 = ucb(loss[a], D, f * delta / A, kind), (1.0 - f) * delta
        else:
            mean, d1 = float(np.mean(loss[a])), delta
        return mean + D * math.sqrt((div_nats(C_bits) + math.log(1.0 / d1)) / (2.0 * n))

    per_alpha = [(B(a, C), B(a, 0.0), float(np.mean(loss[a]))) for a in range(A)]
    a = _best(per_alpha)
    value, value0, empirical = per_alpha[a]
    return Result("token_bpd", value, value0, empirical, a, ranges.random_guess_bpd(V))


def lambda_grid(size: int, lo: float, hi: float) -> np.ndarray:
    """Section 5.2: ``size`` lambdas spaced geometrically in [lo, hi]. The page does not say which
    single point a grid of size 1 holds, so that case is left undefined here."""
    if size < 2:
        raise ValueError("a geometric grid of one point is not defined by docs/bounds.md")
    return lo * (hi / lo) ** (np.arange(size) / (size - 1))


def psi(lam: np.ndarray) -> np.ndarray:
    """Section 5.2: psi(l) = -ln(1 - l) - l."""
    return -np.log(1.0 - lam) - lam


def freedman(loss: np.ndarray, xi2: np.ndarray, alphas, V: int, n: int, sampled: bool, C: float, delta: float,
             lambdas: np.ndarray, f: float = 0.5, kind: str = "bernstein") -> Result:
    """Section 5.2.

    all blocks:  M = mean loss[a],  S = mean xi2[a],  d1 = delta
    sampled:     M = UCB(loss[a], Delta(a), f delta / (2|A|)), S = min(1, UCB(xi2[a], 1, f delta / (2|A|))),
                 d1 = (1 - f) delta
    B(a) = M + Delta_F(a) min_{l in K} [ (psi(l)/l) S + (div + ln(|K|/d1)) / (l n) ]
    """
    A, K = len(alphas), lambdas.size

    def B(a: int, C_bits: float) -> float:
        if sampled:
            d = f * delta / (2.0 * A)
            M = ucb(loss[a], ranges.Delta(alphas[a], V), d, kind)
            S = min(1.0, ucb(xi2[a], 1.0, d, kind))
            d1 = (1.0 - f) * delta
        else:
            M, S, d1 = float(np.mean(loss[a])), float(np.mean(xi2[a])), delta
        inner = psi(lambdas) / lambdas * S + (div_nats(C_bits) + math.log(K / d1)) / (lambdas * n)
        return M + ranges.Delta_F(alphas[a], V) * float(np.min(inner))

    per_alpha = [(B(a, C), B(a, 0.0), float(np.mean(loss[a]))) for a in range(A)]
    a = _best(per_alpha)
    value, value0, empirical = per_alpha[a]
    return Result("token_bpd", value, value0, empirical, a, ranges.random_guess_bpd(V))
