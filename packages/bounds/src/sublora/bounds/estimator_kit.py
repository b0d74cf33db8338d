"""What a bound-estimator plugin needs from sublora, public and stable: the checks, terms and
bookkeeping the built-in estimators use (docs/plugins/bound.md walks through an example and
lists the Evidence fields). Imports no torch. Every function, with its parameter names:

Checks (each returns None or raises ``sublora.core.errors.BoundError`` with a message naming the
problem; ``what`` is a short description of the values for that message):

- ``check_delta(delta)``: 0 < delta < 1.
- ``check_count(value, name, what)``: a count is at least 1; ``name`` is its symbol, ``what`` the
  plural noun (``check_count(tokens.n, "n", "training tokens")``).
- ``check_range(values, lo, hi, what)``: ``values`` (a numpy array) non-empty, finite and in
  [lo, hi] up to ``RANGE_TOLERANCE`` (1e-3 of float32 rounding): the range the bound pays for.
  Call it on every array you bound.
- ``check_extremes(extremes, alphas, V, what)``: the per-token loss extremes the scorer saw
  (``loss_extremes``, shape (|A|, 2)) lie in ``loss_range(alpha, V)`` at every alpha (block or
  document means can hide a token outside); does nothing when ``extremes`` is None, as it is in
  the contract's synthetic evidence and older evidence files.
- ``per_alpha(values, alphas, units, what)``: an evidence array as float64, checked to have
  shape (len(alphas), units); ``units`` is a count (evaluated blocks or sampled documents).
- ``topk_errors(topk_error, units, what)``: ``[(k, errors)]`` in increasing k from a
  ``topk_error`` dict, each of shape (units,) and checked in [0, 1].

Terms (docs/bounds.md section 4):

- ``subsample_ucb(values, R, delta, kind)``: upper confidence limit, probability >= 1 - delta, of
  the population mean behind m units drawn with replacement, range width R; kind
  ``"hoeffding"`` or ``"bernstein"`` (fix it in your config before seeing data).
- ``hoeffding_term(Delta, m, delta)``, ``bernstein_term(values, R, delta)``: the two deviations
  alone (Bernstein needs m >= 2).

Smoothed-loss ranges (docs/bounds.md section 1; alpha in (0, 1], V >= 2):
``loss_range(alpha, V)`` = (lo, hi), ``delta_range(alpha, V)`` = hi - lo,
``random_guess_bpd(V)`` = log2 V, ``random_guess_topk(k, V)`` = 1 - min(k, V) / V (what
``vacuous`` compares with).

Results:

- ``complexity_inputs(complexity)``: the complexity's fields (code_bits, prefix_bits,
  extra_bits, extra_breakdown, total_bits, div_nats) for a result's ``inputs``.
- ``make_result(estimator, name, value, empirical, value_without_complexity, random_guess,
  units, inputs, target="", assumptions=None)``: a ``BoundResult``. ``estimator`` is the
  estimator's name string (``self.name``), ``name`` the result's; ``value_without_complexity``
  is the same bound at zero bits (div = 0); ``units`` a label, ``"bits/token"`` or
  ``"error rate"`` (the CLI prints the latter as a percentage); ``target`` a known target
  (``token_bpd``, ``document_bpd``, ``document_top{k}``, ``sequence_bpd``, ``sequence_top{k}``:
  the default "" fails the contract). complexity_term = value - value_without_complexity and
  confidence_term = value_without_complexity - empirical, so the terms add up (the contract
  checks it), and ``vacuous`` = value >= random_guess.
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
