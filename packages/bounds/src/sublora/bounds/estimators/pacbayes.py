"""PAC-Bayes bounds with a point-mass posterior on the coded model (docs/bounds.md section 6.2).

The prior puts mass 2^-C(h) on the coded hypothesis (C = ``complexity.total_bits``), the
posterior is a point mass on it, so KL(Q || P) = C ln 2 = ``complexity.nats``. For losses
in [0, 1] of N i.i.d. training documents, with probability >= 1 - delta_pb:

- ``mcallester``: R <= R_N + sqrt((KL + ln(xi(N) / delta_pb)) / (2N));
- ``kl`` (Langford-Seeger-Maurer): kl(R_N || R) <= (KL + ln(xi(N) / delta_pb)) / N, solved for
  the largest R by bisection to 1e-9 (the tightest of the three for small errors);
- ``catoni``: R <= min_{beta in B} (1 - exp(-beta R_N - (KL + ln(|B| / delta_pb)) / N)) / (1 - exp(-beta)),
  B a geometric grid, its size paid by the union bound (the |B| in the log).

xi(N) = 2 sqrt(N) (Maurer 2004, proven for N >= 8); below 8 documents the exact
xi(N) = sum_k binom(N, k) (k/N)^k (1 - k/N)^(N - k) is used (Maurer's bound on E exp(N kl), valid for every
N; it is below 2 sqrt(N) there too, e.g. 3.22 vs 4 at N = 4, so using 2 sqrt(N) would only be looser).
McAllester follows from the kl form by Pinsker's inequality, so it shares xi(N).

R_N, the mean loss over all N training documents, is not observed: the evidence holds n
documents drawn uniformly with replacement. All three bounds increase with R_N, so R_N is
replaced by its upper confidence limit min(1, UCB(values on [0, 1], 1, delta_s))
(``subsample_bound``: Hoeffding R_n + sqrt(ln(1 / delta_s) / (2n)) by default, or empirical
Bernstein), with delta_s = f delta (divided by |A| for the bits-per-token result, whose alpha is
picked after seeing the sample), delta_pb = (1 - f) delta, f = ``subsample_delta_fraction``.

Applied to the document top-k errors (in [0, 1] already) and to the smoothed bits per token,
rescaled from its range [lo, lo + Delta(alpha)] to [0, 1] and back (best alpha of the grid,
paid for in the complexity's extra bits). complexity_term = bound(KL) - bound(KL = 0);
confidence_term = bound(KL = 0) - empirical.
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
    per_alpha,
    subsample_ucb,
    topk_errors,
)
from sublora.bounds.smoothing import delta_range, loss_range, random_guess_bpd, random_guess_topk
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence
from sublora.core.errors import BoundError

#: bisection tolerance of the kl inverse
KL_TOLERANCE = 1e-9


def kl_bernoulli(q: float, p: float) -> float:
    """kl(q || p) = q ln(q/p) + (1 - q) ln((1 - q)/(1 - p)), with 0 ln 0 = 0 (inf when p excludes q)."""
    out = 0.0
    for a, b in ((q, p), (1.0 - q, 1.0 - p)):
        if a > 0.0:
            out += math.inf if b <= 0.0 else a * math.log(a / b)
    return out


def kl_inverse_upper(q: float, c: float, tol: float = KL_TOLERANCE) -> float:
    """The largest p in [q, 1] with kl(q || p) <= c, by bisection; returns the upper end (conservative)."""
    if not 0.0 <= q <= 1.0 or c < 0.0:
        raise BoundError(f"kl inverse needs q in [0, 1] and c >= 0; got q={q}, c={c}.")
    lo, hi = q, 1.0
    if kl_bernoulli(q, hi) <= c:
        return 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2.0
        if kl_bernoulli(q, mid) <= c:
            lo = mid
        else:
            hi = mid
    return hi


def maurer_xi(n: int) -> float:
    """xi(n) >= E[exp(n kl(R_hat || R))]: 2 sqrt(n) for n >= 8, the exact binomial sum below."""
    check_count(n, "N", "training units")
    if n >= 8:
        return 2.0 * math.sqrt(n)
    return sum(math.comb(n, k) * (k / n) ** k * (1 - k / n) ** (n - k) for k in range(n + 1))


def mcallester_bound(risk: float, n: int, kl_nats: float, delta: float) -> float:
    check_delta(delta)
    return risk + math.sqrt((kl_nats + math.log(maurer_xi(n) / delta)) / (2.0 * n))


def kl_bound(risk: float, n: int, kl_nats: float, delta: float) -> float:
    check_delta(delta)
    return kl_inverse_upper(min(max(risk, 0.0), 1.0), (kl_nats + math.log(maurer_xi(n) / delta)) / n)


def beta_grid(size: int, lo: float, hi: float) -> np.ndarray:
    if size < 1 or not 0.0 < lo <= hi:
        raise BoundError(f"Beta grid needs size >= 1 and 0 < lo <= hi; got size={size}, lo={lo}, hi={hi}.")
    return np.array([hi]) if size == 1 else np.geomspace(lo, hi, size)


def catoni_bound(risk: float, n: int, kl_nats: float, delta: float, betas: np.ndarray) -> tuple[float, float]:
    """(bound, argmin beta) over the grid; the union bound over |B| betas is inside the log."""
    check_delta(delta)
    check_count(n, "N", "training units")
    betas = np.asarray(betas, dtype=np.float64)
    exponent = betas * risk + (kl_nats + math.log(betas.size / delta)) / n
    values = -np.expm1(-exponent) / -np.expm1(-betas)  # (1 - e^-x) / (1 - e^-beta), stable
    best = int(np.argmin(values))
    return float(values[best]), float(betas[best])


class PacBayesBound(BoundEstimator):
    """Document-level PAC-Bayes bounds (variant mcallester, kl or catoni) on top-k error and rescaled BPD."""

    def _bound(self, risk: float, N: int, kl_nats: float, delta: float) -> tuple[float, float | None]:
        variant = self.config.variant
        if variant == "mcallester":
            return mcallester_bound(risk, N, kl_nats, delta), None
        if variant == "kl":
            return kl_bound(risk, N, kl_nats, delta), None
        cfg = self.config
        return catoni_bound(risk, N, kl_nats, delta, beta_grid(cfg.grid_size, cfg.beta_min, cfg.beta_max))

    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        docs = evidence.documents
        if docs is None:
            return []
        check_delta(delta)
        N, n, V, A = int(docs.N), int(docs.n), int(evidence.vocab_size), len(evidence.alphas)
        check_count(N, "N", "training documents")
        check_count(n, "n", "sampled documents")
        check_extremes(docs.loss_extremes, evidence.alphas, V, "document")
        cfg = self.config
        f = cfg.subsample_delta_fraction
        delta_pb, delta_s = (1.0 - f) * delta, f * delta
        variant = cfg.variant
        common = {"N": N, "n": n, "delta": float(delta), "delta_pacbayes": delta_pb,
                  "subsample_delta_fraction": f, "subsample_bound": cfg.subsample_bound, "kl_nats": complexity.nats,
                  "xi": maurer_xi(N), "vocab_size": V, **complexity_inputs(complexity)}

        def unit_bound(values01: np.ndarray, kl_nats: float, d_s: float) -> tuple[float, float | None, float]:
            """(bound on [0, 1], beta, R_N upper limit) for unit values on [0, 1] sampled at confidence d_s."""
            upper = min(1.0, subsample_ucb(values01, 1.0, d_s, cfg.subsample_bound))
            value, beta = self._bound(upper, N, kl_nats, delta_pb)
            return value, beta, upper

        bpd = per_alpha(docs.bpd, evidence.alphas, n, "documents.bpd")
        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            lo, hi = loss_range(alpha, V)
            check_range(bpd[a], lo, hi, what=f"document BPD at alpha={alpha}")
            Delta = delta_range(alpha, V)
            values01 = (bpd[a] - lo) / Delta  # not clipped per document: only the limit is (at 1)
            value01, beta, upper = unit_bound(values01, complexity.nats, delta_s / A)
            candidates.append((lo + Delta * value01, a, lo, Delta, float(bpd[a].mean()), float(values01.mean()),
                               upper, beta))
        value, a, lo, Delta, empirical, scaled, upper, beta = min(candidates)
        values01 = (bpd[a] - lo) / Delta
        value0 = lo + Delta * unit_bound(values01, 0.0, delta_s / A)[0]
        inputs = {**common, "alpha": float(evidence.alphas[a]), "alpha_index": a, "delta_subsample": delta_s / A,
                  "alphas": [float(x) for x in evidence.alphas], "Delta": Delta, "lo": lo,
                  "empirical_rescaled": scaled, "train_risk_upper_rescaled": upper, "beta": beta}
        results = [make_result(self.name, f"document_bpd_{variant}", value, empirical, value0, random_guess_bpd(V),
                               "bits/token", inputs, target="document_bpd")]

        for k, errors in topk_errors(docs.topk_error, n, "documents"):
            empirical = float(errors.mean())
            value, beta, upper = unit_bound(errors, complexity.nats, delta_s)
            results.append(make_result(
                self.name, f"document_top{k}_{variant}", value, empirical, unit_bound(errors, 0.0, delta_s)[0],
                random_guess_topk(int(k), V), "error rate",
                {**common, "alpha": None, "k": int(k), "Delta": 1.0, "delta_subsample": delta_s,
                 "train_risk_upper": upper, "beta": beta},
                target=f"document_top{k}",
            ))
        return results
