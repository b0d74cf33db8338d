"""Token-level empirical Freedman bound (docs/bounds.md section 5.2; Finzi et al. 2025 structure).

X_k = smoothed loss of training token k (bits), Y_k = entropy (bits) of the smoothed
prediction at k (known before token k), xi_k = (Y_k - X_k) / Delta_F with
Delta_F = log2(V / alpha) (X_k - Y_k <= Delta_F since Y_k >= 0), so xi_k in [-1, 1].
With probability >= 1 - delta1 over the n training tokens:

    (1/n) sum mu_k <= (1/n) sum X_k
                      + Delta_F min_{lambda in K} [ (psi(lambda)/lambda) Sigma_hat
                                                   + (C ln 2 + ln(|K| / delta1)) / (lambda n) ]

psi(lambda) = -ln(1 - lambda) - lambda, Sigma_hat = (1/n) sum xi_k^2, C = ``complexity.total_bits``.
The grid K holds ``grid_size`` lambdas spaced geometrically in [lambda_min, lambda_max]
(default 1000 points in [1e-4, 0.999]); the union bound over it is the |K| in the log.

Subsampling (``tokens.sampled``, m blocks drawn uniformly with replacement): the bound is
increasing in both the mean of X and Sigma_hat, so each is replaced by an upper confidence
limit over the m block means (``subsample_bound``: empirical Bernstein or Hoeffding; range
Delta(alpha) for X, 1 for xi^2, Sigma's limit clipped at 1). delta is split three ways:
delta1 = (1 - f) delta for the martingale, delta_x = delta_s = f delta / (2 |A|) for the two
limits (the best alpha is picked after seeing the sample: a union bound over the grid A),
with f = ``subsample_delta_fraction``. When every block was evaluated, delta1 = delta.

complexity_term = bound(C) - bound(C = 0) (lambda re-optimised); confidence_term =
bound(C = 0) - empirical.
"""

from __future__ import annotations

import math

import numpy as np

from sublora.bounds.estimators._common import (
    check_count,
    check_delta,
    check_extremes,
    check_range,
    complexity_inputs,
    make_result,
    subsample_ucb,
)
from sublora.bounds.estimators._tokens import token_arrays, token_inputs
from sublora.bounds.smoothing import delta_range, freedman_range, loss_range, random_guess_bpd
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence
from sublora.core.errors import BoundError


def lambda_grid(size: int = 1000, lo: float = 1e-4, hi: float = 0.999) -> np.ndarray:
    """``size`` lambdas spaced geometrically in [lo, hi] (just ``hi`` when size == 1)."""
    if size < 1 or not 0.0 < lo <= hi < 1.0:
        raise BoundError(f"Lambda grid needs size >= 1 and 0 < lo <= hi < 1; got size={size}, lo={lo}, hi={hi}.")
    return np.array([hi]) if size == 1 else np.geomspace(lo, hi, size)


def psi(lam):
    """psi(lambda) = -ln(1 - lambda) - lambda."""
    return -np.log1p(-lam) - lam


def freedman_term(sigma_hat, n_tokens: int, div_nats: float, delta: float, lambdas: np.ndarray):
    """(min over lambdas of (psi/lambda) Sigma_hat + (div + ln(|K|/delta)) / (lambda n), argmin lambda).

    ``sigma_hat`` may be an array; both outputs then have its shape.
    """
    check_delta(delta)
    check_count(n_tokens, "n", "tokens")
    lambdas = np.asarray(lambdas, dtype=np.float64)
    sigma = np.asarray(sigma_hat, dtype=np.float64)[..., None]
    cost = (div_nats + math.log(lambdas.size / delta)) / (lambdas * n_tokens)
    values = psi(lambdas) / lambdas * sigma + cost  # (..., |K|)
    best = np.argmin(values, axis=-1)
    term = np.take_along_axis(values, best[..., None], axis=-1)[..., 0]
    lam = lambdas[best]
    return (float(term), float(lam)) if term.ndim == 0 else (term, lam)


def freedman_bound(
    mean_loss, sigma_hat, n_tokens: int, div_nats: float, Delta: float, delta: float, lambdas: np.ndarray
):
    """mean_loss + Delta * freedman_term(...); arrays broadcast."""
    term, _ = freedman_term(sigma_hat, n_tokens, div_nats, delta, lambdas)
    return mean_loss + Delta * term


class FreedmanBound(BoundEstimator):
    """Token-level BPD bound paying the observed spread Sigma_hat instead of the full range."""

    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        if evidence.tokens is None:
            return []
        check_delta(delta)
        cfg = self.config
        tokens, loss, xi2 = token_arrays(evidence)
        V, n, A = int(evidence.vocab_size), int(tokens.n), len(evidence.alphas)
        check_extremes(tokens.loss_extremes, evidence.alphas, V, "token")
        lambdas = lambda_grid(cfg.grid_size, cfg.lambda_min, cfg.lambda_max)
        f = cfg.subsample_delta_fraction if tokens.sampled else 0.0
        # each alpha's share of the sample's delta, split between the mean and Sigma_hat
        delta1, delta_x, delta_s = (1.0 - f) * delta, f * delta / (2.0 * A), f * delta / (2.0 * A)

        def bound(a: int, Delta_x: float, Delta_F: float, div: float) -> tuple:
            """(value, lambda, Sigma upper limit used)."""
            mean_up, sigma_up = float(loss[a].mean()), float(xi2[a].mean())
            if tokens.sampled:
                mean_up = subsample_ucb(loss[a], Delta_x, delta_x, cfg.subsample_bound)
                sigma_up = min(1.0, subsample_ucb(xi2[a], 1.0, delta_s, cfg.subsample_bound))
            term, lam = freedman_term(sigma_up, n, div, delta1, lambdas)
            return mean_up + Delta_F * term, lam, sigma_up

        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(loss[a], *loss_range(alpha, V), what=f"token losses at alpha={alpha}")
            check_range(xi2[a], 0.0, 1.0, what=f"xi^2 block means at alpha={alpha}")
            Delta_x, Delta_F = delta_range(alpha, V), freedman_range(alpha, V)
            value, lam, sigma_up = bound(a, Delta_x, Delta_F, complexity.nats)
            candidates.append((value, a, lam, float(xi2[a].mean()), sigma_up, Delta_x, Delta_F, float(loss[a].mean())))
        value, a, lam, sigma, sigma_up, Delta_x, Delta_F, empirical = min(candidates)
        inputs = {
            **token_inputs(tokens, delta), "alpha": float(evidence.alphas[a]), "alpha_index": a,
            "alphas": [float(x) for x in evidence.alphas], "Delta": Delta_F, "Delta_alpha": Delta_x,
            "vocab_size": V, "sigma_hat": sigma, "sigma_upper": sigma_up, "lambda": lam,
            "grid_size": int(lambdas.size), "lambda_min": float(lambdas[0]), "lambda_max": float(lambdas[-1]),
            "delta_martingale": delta1, "delta_mean": delta_x if tokens.sampled else None,
            "delta_sigma": delta_s if tokens.sampled else None, "subsample_delta_fraction": f,
            "subsample_bound": cfg.subsample_bound if tokens.sampled else None,
            **complexity_inputs(complexity),
        }
        value0 = bound(a, Delta_x, Delta_F, 0.0)[0]
        return [make_result(
            self.name, "token_freedman_bpd", value, empirical, value0, random_guess_bpd(V), "bits/token", inputs,
            target="token_bpd",
        )]
