"""What every reference bound returns, and the two ways it can decline."""

from __future__ import annotations

from dataclasses import dataclass, field


class Refused(Exception):
    """The evidence breaks a check the page requires (a loss outside [lo, hi], ...): the estimator must refuse."""


class Undefined(Exception):
    """The page does not define this case (e.g. Bernstein with one draw); the estimator should refuse it too."""


@dataclass(frozen=True)
class Result:
    """One bound. ``value0`` is the same bound with zero complexity (div = 0, same alpha), so that
    complexity_term = value - value0 and confidence_term = value0 - empirical.

    ``slack`` is how far above ``value`` the page lets an implementation land (the kl inverse is
    a bisection to 1e-9 returning the upper end); 0 for closed forms.
    """

    target: str
    value: float
    value0: float
    empirical: float
    alpha_index: int | None
    random_guess: float
    slack: float = 0.0
    assumptions: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)

    @property
    def complexity_term(self) -> float:
        return self.value - self.value0

    @property
    def confidence_term(self) -> float:
        return self.value0 - self.empirical
