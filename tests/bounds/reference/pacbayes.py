"""Section 6.2 of docs/bounds.md: PAC-Bayes with a point-mass posterior, KL = div."""

from __future__ import annotations

import math

import numpy as np

from reference import ranges
from reference.common import Result
from reference.complexity import div_nats
from reference.subsample import ucb

#: "bisection to 1e-9, the upper end returned": an implementation may land this far above the inverse.
KL_SLACK = 1e-9


def xi(N: int) -> float:
    """xi(N) = 2 sqrt(N) for N >= 8, else sum_{j=0..N} binom(N, j) (j/N)^j (1 - j/N)^(N - j) (0^0 = 1)."""
    if N >= 8:
        return 2.0 * math.sqrt(N)
    return sum(math.comb(N, j) * (j / N) ** j * (1.0 - j / N) ** (N - j) for j in range(N + 1))


def kl(q: float, p: float) -> float:
    """Bernoulli kl(q || p), 0 ln 0 = 0."""
    total = 0.0
    for x, y in ((q, p), (1.0 - q, 1.0 - p)):
        if x > 0.0:
            if y <= 0.0:
                return math.inf
            total += x * math.log(x / y)
    return total


def kl_inverse(q: float, c: float) -> float:
    """The largest p in [q, 1] with kl(q || p) <= c, to machine precision (bisection until it cannot move)."""
    if kl(q, 1.0) <= c:
        return 1.0
    good, bad = q, 1.0
    while True:
        mid = 0.5 * (good + bad)
        if mid in (good, bad):
            return good
        if kl(q, mid) <= c:
            good = mid
        else:
            bad = mid


def mcallester(q: float, N: int, KL: float, d: float) -> float:
    return q + math.sqrt((KL + math.log(xi(N) / d)) / (2.0 * N))


def kl_bound(q: float, N: int, KL: float, d: float) -> float:
    return kl_inverse(q, (KL + math.log(xi(N) / d)) / N)


def beta_grid(size: int, lo: float, hi: float) -> np.ndarray:
    """The page names 'the beta grid B' without defining it; the estimator's options (grid_size points
    between beta_min and beta_max) are read as a geometric grid like section 5.2's lambdas."""
    if size < 2:
        raise ValueError("a geometric grid of one point is not defined by docs/bounds.md")
    return lo * (hi / lo) ** (np.arange(size) / (size - 1))


def catoni(q: float, N: int, KL: float, d: float, betas: np.ndarray) -> float:
    """min over B of (1 - exp(-beta q - (KL + ln(|B|/d)) / N)) / (1 - exp(-beta))."""
    x = betas * q + (KL + math.log(betas.size / d)) / N
    return float(np.min((1.0 - np.exp(-x)) / (1.0 - np.exp(-betas))))


def pacbayes(bpd: np.ndarray, topk: dict[int, np.ndarray], alphas, V: int, N: int, C: float, delta: float,
             variant: str = "kl", f: float = 0.5, kind: str = "hoeffding", betas: np.ndarray | None = None
             ) -> list[Result]:
    """u = min(1, UCB(values01, 1, d_s)), d_s = f delta / |A| (BPD) or f delta (top-k); PB at d = (1 - f) delta.
    BPD: B(a) = lo(a) + Delta(a) PB(u, N, div, d), values01 = (x - lo(a)) / Delta(a); top-k: PB(u, N, div, d)."""
    A = len(alphas)
    d = (1.0 - f) * delta

    def PB(u: float, C_bits: float) -> float:
        KL = div_nats(C_bits)
        if variant == "mcallester":
            return mcallester(u, N, KL, d)
        if variant == "kl":
            return kl_bound(u, N, KL, d)
        if variant == "catoni":
            return catoni(u, N, KL, d, betas)
        raise ValueError(f"unknown variant {variant!r}")

    slack01 = KL_SLACK if variant == "kl" else 0.0
    per_alpha = []
    for a, alpha in enumerate(alphas):
        low, D = ranges.lo(alpha, V), ranges.Delta(alpha, V)
        u = min(1.0, ucb((np.asarray(bpd[a], dtype=np.float64) - low) / D, 1.0, f * delta / A, kind))
        per_alpha.append((low + D * PB(u, C), low + D * PB(u, 0.0), float(np.mean(bpd[a])), D))
    a = int(np.argmin([v[0] for v in per_alpha]))
    value, value0, empirical, D = per_alpha[a]
    out = [Result("document_bpd", value, value0, empirical, a, ranges.random_guess_bpd(V), slack=slack01 * D,
                  details={"variant": variant})]
    for k in sorted(topk):
        e = np.asarray(topk[k], dtype=np.float64)
        u = min(1.0, ucb(e, 1.0, f * delta, kind))
        out.append(Result(f"document_top{k}", PB(u, C), PB(u, 0.0), float(np.mean(e)), None,
                          ranges.random_guess_topk(k, V), slack=slack01, details={"variant": variant}))
    return out
