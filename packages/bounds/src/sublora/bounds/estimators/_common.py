"""Checks and bookkeeping shared by the estimators."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sublora.bounds.smoothing import loss_range
from sublora.core.bound import BoundResult, Complexity
from sublora.core.errors import BoundError

#: Evidence losses may exceed the smoothed range by float32 rounding, not more.
RANGE_TOLERANCE = 1e-3


def check_delta(delta: float) -> None:
    """A confidence level must lie in (0, 1)."""
    if not 0.0 < delta < 1.0:
        raise BoundError(f"Confidence delta must lie in (0, 1); got {delta}.")


def check_count(value: int, name: str, what: str) -> None:
    """A count is at least 1; ``name`` (its symbol) and ``what`` (plural noun) word the message."""
    if value < 1:
        raise BoundError(f"{name} (number of {what}) must be at least 1; got {value}.")


def check_range(values: np.ndarray, lo: float, hi: float, what: str) -> None:
    """Every value must lie in [lo, hi] (up to rounding): the range the bound pays for."""
    if values.size == 0:
        raise BoundError(f"No {what} in the evidence.")
    if not np.all(np.isfinite(values)):
        raise BoundError(f"Non-finite {what} in the evidence.")
    vmin, vmax = float(values.min()), float(values.max())
    if vmin < lo - RANGE_TOLERANCE or vmax > hi + RANGE_TOLERANCE:
        raise BoundError(
            f"{what} span [{vmin:.6g}, {vmax:.6g}], outside the range [{lo:.6g}, {hi:.6g}] the bound assumes.",
            hint="The evidence was computed with another alpha or vocabulary size than the bound.",
        )


def per_alpha(values: np.ndarray, alphas: tuple[float, ...], units: int, what: str) -> np.ndarray:
    """Evidence array of shape (len(alphas), units) as float64."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(alphas), units):
        raise BoundError(f"{what} must have shape (len(alphas), units) = ({len(alphas)}, {units}); got {values.shape}.")
    return values


def topk_errors(topk_error: dict[int, np.ndarray], units: int, what: str) -> list[tuple[int, np.ndarray]]:
    """(k, errors) for every k in increasing order, each validated: shape (units,), values in [0, 1]."""
    out = []
    for k in sorted(topk_error):
        errors = np.asarray(topk_error[k], dtype=np.float64)
        if errors.shape != (units,):
            raise BoundError(f"{what}.topk_error[{k}] must have shape ({units},); got {errors.shape}.")
        check_range(errors, 0.0, 1.0, what=f"{what} top-{k} errors")
        out.append((int(k), errors))
    return out


def hoeffding_term(Delta: float, m: int, delta: float) -> float:
    """Delta * sqrt(ln(1/delta) / (2m)): upper deviation of a mean of m iid draws with range Delta."""
    check_delta(delta)
    check_count(m, "m", "draws")
    return Delta * math.sqrt(math.log(1.0 / delta) / (2.0 * m))


def bernstein_term(values: np.ndarray, R: float, delta: float) -> float:
    """Empirical Bernstein (Maurer & Pontil 2009, Thm 4) for m iid draws in a range of width R:
    sqrt(2 s^2 ln(2/delta) / m) + 7 R ln(2/delta) / (3 (m - 1)), s^2 the unbiased sample variance."""
    check_delta(delta)
    m = int(np.asarray(values).size)
    if m < 2:
        raise BoundError(f"The empirical Bernstein term needs at least 2 draws; got {m}.",
                         hint="Use subsample_bound: hoeffding, or evaluate more units.")
    log_term = math.log(2.0 / delta)
    variance = float(np.var(values, ddof=1))
    return math.sqrt(2.0 * variance * log_term / m) + 7.0 * R * log_term / (3.0 * (m - 1))


def subsample_ucb(values: np.ndarray, R: float, delta: float, kind: str) -> float:
    """Upper confidence limit (probability >= 1 - delta) of the population mean behind ``values``, m units
    drawn uniformly with replacement, each in a range of width R (docs/bounds.md section 4)."""
    values = np.asarray(values, dtype=np.float64)
    if kind == "hoeffding":
        return float(values.mean()) + hoeffding_term(R, values.size, delta)
    if kind == "bernstein":
        return float(values.mean()) + bernstein_term(values, R, delta)
    raise BoundError(f"Unknown subsample bound {kind!r}; use 'hoeffding' or 'bernstein'.")


def check_extremes(extremes: np.ndarray | None, alphas: tuple[float, ...], V: int, what: str) -> None:
    """The smallest and largest per-token loss at each alpha must lie in the range the bound pays for:
    block or document means can hide a token outside it."""
    if extremes is None:
        return
    extremes = np.asarray(extremes, dtype=np.float64)
    if extremes.shape != (len(alphas), 2):
        raise BoundError(f"{what}.loss_extremes must have shape ({len(alphas)}, 2); got {extremes.shape}.")
    for a, alpha in enumerate(alphas):
        check_range(extremes[a], *loss_range(alpha, V), what=f"per-token {what} losses at alpha={alpha}")


def complexity_inputs(complexity: Complexity) -> dict[str, Any]:
    """The complexity's fields as plain numbers, for a result's ``inputs`` (div_nats = complexity.nats)."""
    return {
        "code_bits": int(complexity.code_bits),
        "prefix_bits": float(complexity.prefix_bits),
        "extra_bits": float(complexity.extra_bits),
        "extra_breakdown": {k: float(v) for k, v in complexity.extra_breakdown.items()},
        "total_bits": float(complexity.total_bits),
        "div_nats": float(complexity.nats),
    }


def make_result(estimator: str, name: str, value: float, empirical: float, value_without_complexity: float,
                random_guess: float, units: str, inputs: dict[str, Any], target: str = "",
                assumptions: list[str] | None = None) -> BoundResult:
    """complexity_term = bound(C) - bound(C = 0); confidence_term = bound(C = 0) - empirical.

    ``estimator``: the estimator's name (``self.name``); ``units``: "bits/token" or "error rate";
    ``target``: the quantity bounded (docs/plugins/bound.md), required by the contract.
    """
    value, value0, empirical = float(value), float(value_without_complexity), float(empirical)
    return BoundResult(
        name=name, estimator=estimator, target=target, value=value, empirical=empirical,
        complexity_term=value - value0, confidence_term=value0 - empirical,
        random_guess=float(random_guess), units=units, vacuous=value >= random_guess, inputs=inputs,
        assumptions=list(assumptions or []),
    )
