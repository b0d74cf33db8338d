"""The adversarial scenarios of the bound contract simulate what they claim: the smallest of 2^c binomial
counts, evidence inside the paid-for range, the right truths, a chosen hypothesis at the edge of the union bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sublora.core.testing import iter_trials, scenario_delta
from sublora.core.testing.adversarial import (
    ADVERSARIAL_SCENARIOS,
    BITS,
    HEAVY_SCENARIOS,
    SCENARIO_TABLE,
    min_binomial,
)


def test_min_binomial_is_the_smallest_of_k_binomials():
    rng = np.random.default_rng(0)
    direct = rng.binomial(40, 0.3, (20_000, 16)).min(axis=1)
    drawn = min_binomial(rng, 40, 0.3, math.log(16), 20_000)
    x = np.arange(41)
    cdf_gap = np.abs((drawn[:, None] <= x).mean(0) - (direct[:, None] <= x).mean(0)).max()
    assert cdf_gap < 0.025  # two-sample KS at 20,000 draws each: 0.0195 at level 0.001
    one = min_binomial(rng, 40, 0.3, 0.0, 20_000)  # K = 1: the binomial itself
    assert abs(one.mean() - 12.0) < 0.06 and abs(one.var() - 8.4) < 0.3


def test_the_chosen_hypothesis_sits_at_the_union_bound():
    """The best of 2^400 fair coins on N units lies ~23.3 sd below its truth; Hoeffding's union bound
    allows 23.7 sd at delta = 0.05: the complexity term is tight to ~1.5 %, so a 20 % cut fails always."""
    N, rng = 2**14, np.random.default_rng(1)
    z = (N / 2 - min_binomial(rng, N, 0.5, BITS * math.log(2.0), 2000)) / math.sqrt(N / 4)
    union = math.sqrt(2.0 * (BITS * math.log(2.0) + math.log(1 / 0.05)))
    assert 23.2 < z.mean() < 23.5 and z.std() < 0.1
    assert (z > union).mean() < 0.01  # the valid bound rarely fails ...
    assert (z > 0.8 * union).all()  # ... and one with a fifth of its margin cut always does


@pytest.mark.parametrize("scenario", ADVERSARIAL_SCENARIOS)
def test_scenario_evidence_and_truths(scenario):
    """Every loss in its alpha's [lo, hi], xi^2 in [0, 1], the bits the choice was made with, a truth per target."""
    trials = list(iter_trials(scenario, 3, seed=5))
    for trial in trials:
        ev, V = trial.evidence, trial.evidence.vocab_size
        lo = np.array([-math.log2(1 - a + a / V) for a in ev.alphas])[:, None]
        hi = np.array([math.log2(V / a) for a in ev.alphas])[:, None]
        values = ev.documents.bpd if ev.documents is not None else ev.tokens.loss
        assert np.all(values >= lo - 1e-12) and np.all(values <= hi + 1e-12)
        if ev.tokens is not None:
            assert np.all((ev.tokens.xi2 >= 0) & (ev.tokens.xi2 <= 1))
            assert ev.tokens.n % ev.tokens.block_size == 0
        grid = math.log2(len(ev.alphas))
        assert trial.complexity.total_bits == pytest.approx((BITS if scenario.startswith("select") else 1.0) + grid)
        targets = {t for t, _ in trial.truth}
        assert targets >= ({"document_bpd"} if ev.documents is not None else {"token_bpd", "sequence_bpd"})
        assert all(("document_bpd" if ev.documents is not None else "token_bpd", a) in trial.truth for a in ev.alphas)
    assert 0 < scenario_delta(scenario) < 1 and SCENARIO_TABLE[scenario].what


def test_alpha_scenarios_have_equal_truths_and_unbiased_samples():
    """Every alpha has the same truth and its sampled mean is unbiased for it (documents), or for the
    realised mean over all blocks (tokens)."""
    docs = list(iter_trials("alphas_documents", 400, seed=2))
    truths = {v for (t, _), v in docs[0].truth.items() if t == "document_bpd"}
    assert len(truths) == 1
    gap = np.array([t.evidence.documents.bpd.mean(axis=1) for t in docs]) - truths.pop()  # (trials, A)
    assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(gap.size)
    blocks = list(iter_trials("alphas_tokens_sampled", 400, seed=2))
    alphas = blocks[0].evidence.alphas
    gap = np.array([t.evidence.tokens.loss.mean(axis=1) - np.array([t.truth[("token_bpd", a)] for a in alphas])
                    for t in blocks])
    assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(gap.size)


def test_heavy_scenarios_are_registered():
    assert set(HEAVY_SCENARIOS) <= set(SCENARIO_TABLE) and not set(HEAVY_SCENARIOS) & set(ADVERSARIAL_SCENARIOS)
    trial = next(iter_trials("alphas_tokens_wide", 1))
    assert len(trial.evidence.alphas) == 256 and trial.evidence.tokens.blocks == 4096
