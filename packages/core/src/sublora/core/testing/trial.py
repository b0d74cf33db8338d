"""One simulated training set of the bound contract: shared by its benign scenarios (``bound_contract``)
and its adversarial ones (``adversarial``), which each build them."""

from __future__ import annotations

from dataclasses import dataclass

from sublora.core.bound import Complexity, Evidence


@dataclass(frozen=True)
class Trial:
    """One simulated training set: the evidence an estimator sees and the true value of each target."""

    evidence: Evidence
    truth: dict[tuple[str, float | None], float]  # (target, alpha or None) -> true value
    complexity: Complexity | None = None  # the bits the evidence's hypothesis was chosen with; None: minimal_complexity
