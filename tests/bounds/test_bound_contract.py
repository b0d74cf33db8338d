"""The bound contract on every registered estimator, and proof that it catches wrong ones."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest

from sublora.core.bound import BoundConfig, BoundEstimator, BoundResult
from sublora.core.registry import registry
from sublora.core.testing import (
    allowed_failures,
    check_bound_contract,
    check_bound_monotone,
    check_bound_validity,
    simulate_documents,
    simulate_tokens,
)


def _specs() -> list[str]:
    specs = []
    for status in registry("bound").statuses():
        config = registry("bound").load(status.entry.name)
        specs.append(status.entry.name)
        specs += [f"{status.entry.name}:{v}" for v in status.variants if v != config.default_variant]
    return specs


SPECS = _specs()


def test_every_builtin_estimator_is_covered():
    assert {"subsampling", "azuma", "freedman", "pacbayes", "pacbayes:mcallester", "pacbayes:catoni"} <= set(SPECS)


@pytest.mark.parametrize("spec", SPECS)
def test_contract(spec):
    report = check_bound_contract(spec)
    assert all(c.trials == 400 and c.ok for c in report)


def test_simulations_know_their_truth():
    """The Markov truth is the exact conditional mean: the realised mean loss concentrates on it."""
    trials = simulate_tokens(200, seed=3)
    gap = [t.evidence.tokens.loss[0].mean() - t.truth[("token_bpd", 0.05)] for t in trials]
    assert abs(np.mean(gap)) < 4 * np.std(gap) / math.sqrt(len(gap))  # unbiased
    docs = simulate_documents(200, seed=3)
    top1 = [t.evidence.documents.topk_error[1].mean() for t in docs]
    assert abs(np.mean(top1) - 0.6) < 0.02
    assert allowed_failures(400) == pytest.approx(20 + 3 * math.sqrt(400 * 0.05 * 0.95))


class _WrongConfig(BoundConfig):
    implementation: ClassVar[str] = ""


class _Wrong(BoundEstimator):
    """Wraps a correct estimator and shrinks what it adds to the empirical risk."""

    def __init__(self, spec: str, shrink: float):
        super().__init__(_WrongConfig())
        self.inner, self.shrink = registry("bound").config(spec).build(), shrink

    def compute(self, evidence, complexity, delta):
        out = []
        for r in self.inner.compute(evidence, complexity, delta):
            gap = (r.value - r.empirical) * self.shrink
            out.append(BoundResult(**{**r.model_dump(), "value": r.empirical + gap,
                                      "complexity_term": 0.0, "confidence_term": gap}))
        return out


@pytest.mark.parametrize("spec", ["subsampling", "azuma", "freedman", "pacbayes:kl"])
def test_the_check_catches_a_bound_that_is_too_small(spec):
    with pytest.raises(AssertionError, match="invalid bound"):
        check_bound_validity(_Wrong(spec, shrink=0.0), trials=200)  # the empirical risk alone
    with pytest.raises(AssertionError, match="invalid bound"):
        check_bound_validity(_Wrong(spec, shrink=0.05), trials=200)  # a twentieth of the true margin


def test_the_check_catches_a_bound_that_ignores_its_bits():
    class NoBits(BoundEstimator):
        def __init__(self):
            super().__init__(_WrongConfig())
            self.inner = registry("bound").config("azuma").build()

        def compute(self, evidence, complexity, delta):
            from sublora.core.bound import Complexity

            reversed_bits = Complexity(code_bits=max(1, 10**6 - complexity.code_bits), extra_bits=0)
            return self.inner.compute(evidence, reversed_bits, delta)

    with pytest.raises(AssertionError, match="more bits lowered the bound"):
        check_bound_monotone(NoBits())


def test_a_result_without_a_known_target_is_refused():
    class NoTarget(_Wrong):
        def compute(self, evidence, complexity, delta):
            return [BoundResult(**{**r.model_dump(), "target": ""}) for r in super().compute(evidence, complexity, delta)]

    with pytest.raises(AssertionError, match="set BoundResult.target"):
        check_bound_validity(NoTarget("azuma", 1.0), trials=5)
