"""sublora.bounds.estimator_kit: the public home of what a bound-estimator plugin needs (docs/plugins/bound.md)."""

from __future__ import annotations

import numpy as np
import pytest

from sublora.bounds import estimator_kit as kit
from sublora.bounds.estimators import _common
from sublora.core.bound import Complexity
from sublora.core.errors import BoundError


def test_every_name_is_the_one_the_builtin_estimators_use():
    for name in kit.__all__:
        assert getattr(kit, name) is getattr(_common, name, None) or name in {
            "loss_range", "delta_range", "random_guess_bpd", "random_guess_topk"}, name


def test_make_result_terms_add_up_and_checks_raise_bound_errors():
    complexity = Complexity(code_bits=1000, extra_bits=3.0)
    r = kit.make_result("mine", "document_mine_bpd", 5.0, 3.0, 4.0, 8.0, "bits/token",
                        {"alpha": 0.1, **kit.complexity_inputs(complexity)}, target="document_bpd")
    assert (r.complexity_term, r.confidence_term, r.vacuous) == (1.0, 1.0, False)
    assert r.inputs["total_bits"] == complexity.total_bits
    with pytest.raises(BoundError, match="outside the range"):
        kit.check_range(np.array([0.5, 9.0]), *kit.loss_range(0.1, 16), what="losses")
    with pytest.raises(BoundError):
        kit.check_delta(1.5)
    assert kit.subsample_ucb(np.full(10, 0.2), 1.0, 0.05, "hoeffding") > 0.2
