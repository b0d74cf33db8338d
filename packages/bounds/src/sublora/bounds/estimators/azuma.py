"""Token-level martingale bound, Azuma form (docs/bounds.md section 5.1; Lotfi et al. 2024b).

X_k = smoothed loss of training token k (bits), mu_k its conditional mean given
the tokens before it. With probability >= 1 - delta1 over the n training tokens:

    (1/n) sum mu_k <= (1/n) sum X_k + Delta(alpha) sqrt((C(h) ln 2 + ln(1/delta1)) / (2n))

where C(h) is ``complexity.total_bits`` (prefix-free code + extra bits; the alpha
grid is among the extra bits, so the best alpha may be reported).

Subsampling: when the evidence holds m blocks drawn uniformly with replacement
(``tokens.sampled``), the mean of X over all n tokens is replaced by its upper confidence
limit over the m block means (``subsample_bound``: empirical Bernstein or Hoeffding, range
Delta(alpha)) at delta2 / |A|: the best alpha is picked after seeing the sample, so each
alpha's sample event gets its share of delta2 (a union bound over the grid A).
delta2 = f delta and delta1 = (1 - f) delta with f = ``subsample_delta_fraction``; when every
block was evaluated, delta1 = delta.

complexity_term = bound(C) - bound(C = 0); confidence_term = bound(C = 0) - empirical.
"""

from __future__ import annotations

import math

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
from sublora.bounds.smoothing import delta_range, loss_range, random_guess_bpd
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence


def azuma_bound(mean_loss, n_tokens: int, div_nats: float, Delta: float, delta: float):
    """mean_loss + Delta * sqrt((div + ln(1/delta)) / (2 n)); ``mean_loss`` may be an array."""
    check_delta(delta)
    check_count(n_tokens, "n", "tokens")
    return mean_loss + Delta * math.sqrt((div_nats + math.log(1.0 / delta)) / (2.0 * n_tokens))


class AzumaBound(BoundEstimator):
    """Token-level BPD bound with the full range Delta(alpha), best alpha of the grid."""

    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        if evidence.tokens is None:
            return []
        check_delta(delta)
        cfg = self.config
        tokens, loss, _ = token_arrays(evidence)
        V, n, A = int(evidence.vocab_size), int(tokens.n), len(evidence.alphas)
        check_extremes(tokens.loss_extremes, evidence.alphas, V, "token")
        f = cfg.subsample_delta_fraction if tokens.sampled else 0.0
        delta1, delta2 = (1.0 - f) * delta, f * delta / A  # delta2: each alpha's share of the sample's delta

        def bound(a: int, Delta: float, div: float) -> float:
            mean = subsample_ucb(loss[a], Delta, delta2, cfg.subsample_bound) if tokens.sampled else float(loss[a].mean())
            return azuma_bound(mean, n, div, Delta, delta1)

        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(loss[a], *loss_range(alpha, V), what=f"token losses at alpha={alpha}")
            Delta = delta_range(alpha, V)
            candidates.append((bound(a, Delta, complexity.nats), a, Delta, float(loss[a].mean())))
        value, a, Delta, empirical = min(candidates)
        inputs = {
            **token_inputs(tokens, delta), "alpha": float(evidence.alphas[a]), "alpha_index": a,
            "alphas": [float(x) for x in evidence.alphas], "Delta": Delta, "vocab_size": V,
            "delta_martingale": delta1, "delta_subsample": delta2 if tokens.sampled else None,
            "subsample_delta_fraction": f, "subsample_bound": cfg.subsample_bound if tokens.sampled else None,
            **complexity_inputs(complexity),
        }
        return [make_result(
            self.name, "token_azuma_bpd", value, empirical, bound(a, Delta, 0.0),
            random_guess_bpd(V), "bits/token", inputs, target="token_bpd",
        )]
