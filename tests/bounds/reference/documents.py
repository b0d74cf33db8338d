"""Sections 6.1 and 7 of docs/bounds.md: the subsampling bound on documents and (opt-in) on blocks."""

from __future__ import annotations

import math

import numpy as np

from reference import ranges
from reference.common import Result
from reference.complexity import div_nats
from reference.subsample import ucb

#: Section 7: sequence results state the assumption they rest on.
SEQUENCE_ASSUMPTION = "training blocks are i.i.d. draws from the data distribution"


def occam(R: float, C: float, d: float, N: int) -> float:
    """Section 6.1's complexity term R sqrt((div - ln d) / (2N)), d = r delta (or delta, section 7 all blocks)."""
    return R * math.sqrt((div_nats(C) - math.log(d)) / (2.0 * N))


def bound(values: np.ndarray, R: float, N: int, C: float, delta: float, d_s: float | None, kind: str,
          sampled: bool = True) -> float:
    """Section 6.1: UCB(values, R, d_s) + R sqrt((div - ln(r delta)) / (2N)), r = n / (n + N).
    Section 7, every block evaluated: mean + R sqrt((div - ln delta) / (2N))."""
    if not sampled:
        return float(np.mean(values)) + occam(R, C, delta, N)
    n = values.size
    r = n / (n + N)
    return ucb(values, R, d_s, kind) + occam(R, C, r * delta, N)


def subsampling(bpd: np.ndarray, topk: dict[int, np.ndarray], alphas, V: int, N: int, C: float, delta: float,
                kind: str = "hoeffding", sampled: bool = True, sequences: bool = False) -> list[Result]:
    """Section 6.1 on documents (``bpd``: (|A|, n) document means), or section 7 on blocks
    (``sequences``: ``bpd`` are the block means, N = total_blocks, ``sampled`` says whether drawn).

    d_s = (1 - r) delta / |A| for the BPD (min over a), (1 - r) delta for each top-k (no alpha).
    """
    A, n = len(alphas), bpd.shape[1]
    r = n / (n + N)
    prefix = "sequence" if sequences else "document"
    assumptions = (SEQUENCE_ASSUMPTION,) if sequences else ()
    per_alpha = []
    for a, alpha in enumerate(alphas):
        D = ranges.Delta(alpha, V)
        d_s = (1.0 - r) * delta / A
        per_alpha.append((bound(bpd[a], D, N, C, delta, d_s, kind, sampled),
                          bound(bpd[a], D, N, 0.0, delta, d_s, kind, sampled), float(np.mean(bpd[a]))))
    a = int(np.argmin([v for v, _, _ in per_alpha]))
    value, value0, empirical = per_alpha[a]
    out = [Result(f"{prefix}_bpd", value, value0, empirical, a, ranges.random_guess_bpd(V), assumptions=assumptions)]
    for k in sorted(topk):
        e = np.asarray(topk[k], dtype=np.float64)
        d_s = (1.0 - r) * delta
        out.append(Result(f"{prefix}_top{k}", bound(e, 1.0, N, C, delta, d_s, kind, sampled),
                          bound(e, 1.0, N, 0.0, delta, d_s, kind, sampled), float(np.mean(e)), None,
                          ranges.random_guess_topk(k, V), assumptions=assumptions))
    return out
