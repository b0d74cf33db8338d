"""PAC-Bayes estimators: each formula against an independent computation, and how they are applied."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from sublora.bounds.estimators.pacbayes import (
    beta_grid,
    catoni_bound,
    kl_bernoulli,
    kl_bound,
    kl_inverse_upper,
    maurer_xi,
    mcallester_bound,
)
from sublora.bounds.smoothing import delta_range, loss_range
from sublora.core.bound import Complexity, DocumentEvidence, Evidence
from sublora.core.errors import BoundError, ConfigError
from sublora.core.registry import registry


@pytest.mark.parametrize("q", [0.0, 0.01, 0.3, 0.9, 1.0])
@pytest.mark.parametrize("c", [1e-4, 0.1, 2.0])
def test_kl_inverse_solves_to_1e9(q, c):
    p = kl_inverse_upper(q, c)
    assert q <= p <= 1.0
    if p < 1.0:
        # independent root finding of kl(q || p) = c on (q, 1)
        f = lambda x: (q * math.log(q / x) if q > 0 else 0.0) + (1 - q) * math.log((1 - q) / (1 - x)) - c  # noqa: E731
        assert abs(p - brentq(f, q + 1e-15, 1 - 1e-15, xtol=1e-14)) < 1e-9
        assert p - 1e-9 < 1.0 and kl_bernoulli(q, p - 2e-9) <= c  # the returned end is just past the root
    else:
        assert q == 1.0 or kl_bernoulli(q, 1.0 - 1e-9) <= c  # the root lies within the tolerance of 1


def test_maurer_xi():
    exact = lambda n: sum(math.comb(n, k) * (k / n) ** k * (1 - k / n) ** (n - k) for k in range(n + 1))  # noqa: E731
    for n in range(1, 8):
        assert maurer_xi(n) == pytest.approx(exact(n))
    for n in range(8, 300, 7):  # Maurer 2004: the exact sum never exceeds 2 sqrt(n) from n = 8 on
        assert exact(n) <= maurer_xi(n) == pytest.approx(2 * math.sqrt(n))
    with pytest.raises(BoundError):
        maurer_xi(0)


def test_formulas_by_hand():
    risk, n, kl, delta = 0.2, 1000, 50.0, 0.05
    c = (kl + math.log(2 * math.sqrt(n) / delta)) / n
    assert mcallester_bound(risk, n, kl, delta) == pytest.approx(risk + math.sqrt(c / 2))
    assert kl_bound(risk, n, kl, delta) == pytest.approx(kl_inverse_upper(risk, c))
    betas = beta_grid(50, 0.01, 100)
    by_hand = min((1 - math.exp(-b * risk - (kl + math.log(50 / delta)) / n)) / (1 - math.exp(-b)) for b in betas)
    value, beta = catoni_bound(risk, n, kl, delta, betas)
    assert value == pytest.approx(by_hand, rel=1e-12) and beta in betas
    # kl is the tightest (Pinsker: it implies McAllester); all lie above the risk
    assert risk < kl_bound(risk, n, kl, delta) <= mcallester_bound(risk, n, kl, delta)
    assert kl_bound(0.0, n, kl, delta) < mcallester_bound(0.0, n, kl, delta) / 2  # small errors: much tighter


V, ALPHAS = 100, (0.01, 0.5)


def evidence(seed=0, N=5000, n=300):
    rng = np.random.default_rng(seed)
    bpd = np.stack([lo + (hi - lo) * rng.beta(2, 6, n) for lo, hi in (loss_range(a, V) for a in ALPHAS)])
    docs = DocumentEvidence(N=N, indices=rng.integers(0, N, n), bpd=bpd,
                            topk_error={1: rng.uniform(0.2, 0.6, n), 10: rng.uniform(0, 0.1, n)}, tokens_scored=n)
    return Evidence(vocab_size=V, alphas=ALPHAS, documents=docs)


@pytest.mark.parametrize("variant", ["kl", "mcallester", "catoni"])
def test_applied_to_documents_with_the_subsampling_correction(variant):
    ev, c, delta = evidence(), Complexity(code_bits=2000, extra_bits=1.0), 0.05
    results = registry("bound").config(f"pacbayes:{variant}").build().compute(ev, c, delta)
    assert [r.name for r in results] == [f"document_bpd_{variant}", f"document_top1_{variant}",
                                         f"document_top10_{variant}"]
    assert [r.target for r in results] == ["document_bpd", "document_top1", "document_top10"]
    N, n = 5000, 300
    def sampling(share):  # Hoeffding on [0, 1], delta_s = delta / 2, divided by |A| when alpha is chosen
        return math.sqrt(math.log(1 / (delta / 2 / share)) / (2 * n))

    def unit(empirical01, share=1):
        risk = min(1.0, empirical01 + sampling(share))
        if variant == "kl":
            return kl_bound(risk, N, c.nats, delta / 2)
        if variant == "mcallester":
            return mcallester_bound(risk, N, c.nats, delta / 2)
        return catoni_bound(risk, N, c.nats, delta / 2, beta_grid(100, 0.01, 1000))[0]

    per_alpha = []
    for a, alpha in enumerate(ALPHAS):
        lo, Delta = loss_range(alpha, V)[0], delta_range(alpha, V)
        per_alpha.append(lo + Delta * unit((ev.documents.bpd[a].mean() - lo) / Delta, share=len(ALPHAS)))
    assert results[0].value == pytest.approx(min(per_alpha), rel=1e-9)
    assert results[0].inputs["alpha"] == ALPHAS[int(np.argmin(per_alpha))]
    assert results[1].value == pytest.approx(unit(ev.documents.topk_error[1].mean()), rel=1e-9)
    for r in results:
        assert r.value == pytest.approx(r.empirical + r.complexity_term + r.confidence_term)
        assert r.complexity_term > 0 and r.confidence_term > 0


def test_no_documents_no_bound_and_bad_input():
    estimator = registry("bound").config("pacbayes").build()
    assert estimator.compute(Evidence(vocab_size=V, alphas=ALPHAS), Complexity(code_bits=10, extra_bits=0), 0.05) == []
    for delta in (0.0, 1.0):
        with pytest.raises(BoundError, match="delta"):
            estimator.compute(evidence(), Complexity(code_bits=10, extra_bits=0), delta)
    bad = evidence()
    bad.documents.topk_error[1] = bad.documents.topk_error[1] + 2.0
    with pytest.raises(BoundError, match="range"):
        estimator.compute(bad, Complexity(code_bits=10, extra_bits=0), 0.05)
    with pytest.raises(ConfigError, match="beta_min"):
        registry("bound").config("pacbayes:catoni", {"beta_min": 10, "beta_max": 1})
    with pytest.raises(ConfigError, match="unknown variant"):
        registry("bound").config("pacbayes:seeger")
