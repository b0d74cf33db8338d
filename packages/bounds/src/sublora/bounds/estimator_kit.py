"""What a bound-estimator plugin needs from sublora, public and stable: the checks, terms and
bookkeeping the built-in estimators use (docs/plugins/bound.md walks through an example).

Checks (each raises ``sublora.core.errors.BoundError`` with a message naming the problem):

- ``check_delta(delta)``: 0 < delta < 1.
- ``check_count(value, name, what)``: a count (N, n, m) is at least 1.
- ``check_range(values, lo, hi, what)``: every value finite and in [lo, hi] (1e-3 of float32
  rounding allowed): the range the bound pays for. Call it on every array you bound.
- ``check_extremes(loss_extremes, alphas, V, what)``: the per-token loss extremes the scorer saw
  lie in [lo(a), hi(a)] at every alpha (block or document means can hide a token outside).
- ``per_alpha(values, alphas, units, what)``: an evidence array as float64 of shape (|A|, units).
- ``topk_errors(topk_error, units, what)``: ``[(k, errors)]`` in increasing k, each checked in [0, 1].

Terms (docs/bounds.md section 4):

- ``subsample_ucb(values, R, delta, kind)``: upper confidence limit, probability >= 1 - delta, of
  the population mean behind m units drawn with replacement, range width R; kind
  ``"hoeffding"`` or ``"bernstein"`` (fix it in your config before seeing data).
- ``hoeffding_term(R, m, delta)``, ``bernstein_term(values, R, delta)``: the two deviations alone.

Smoothed-loss ranges (docs/bounds.md section 1): ``loss_range(alpha, V)`` = (lo, hi),
``delta_range(alpha, V)`` = hi - lo, ``random_guess_bpd(V)`` = log2 V,
``random_guess_topk(k, V)`` = 1 - k / V (what ``vacuous`` compares with).

Results:

- ``complexity_inputs(complexity)``: the complexity's fields (code_bits, prefix_bits,
  extra_bits, extra_breakdown, total_bits, div_nats) for a result's ``inputs``.
- ``make_result(estimator, name, value, empirical, value_without_complexity, random_guess,
  units, inputs, target, assumptions)``: a ``BoundResult`` whose complexity_term =
  value - value_without_complexity and confidence_term = value_without_complexity - empirical,
  so the terms add up (the contract checks it) and ``vacuous`` = value >= random_guess.
"""

from __future__ import annotations

from sublora.bounds.estimators._common import (
    RANGE_TOLERANCE,
    bernstein_term,
    check_count,
    check_delta,
    check_extremes,
    check_range,
    complexity_inputs,
    hoeffding_term,
    make_result,
    per_alpha,
    subsample_ucb,
    topk_errors,
)
from sublora.bounds.smoothing import delta_range, loss_range, random_guess_bpd, random_guess_topk

__all__ = [
    "RANGE_TOLERANCE",
    "bernstein_term",
    "check_count",
    "check_delta",
    "check_extremes",
    "check_range",
    "complexity_inputs",
    "delta_range",
    "hoeffding_term",
    "loss_range",
    "make_result",
    "per_alpha",
    "random_guess_bpd",
    "random_guess_topk",
    "subsample_ucb",
    "topk_errors",
]
