"""The headline (docs/bounds.md section 9): one target, candidates fixed before the data is read, delta / K."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sublora.bounds.estimators.azuma import azuma_bound
from sublora.bounds.headline import floor_evidence, headline
from sublora.bounds.smoothing import delta_range, loss_range
from sublora.core.bound import Complexity, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.registry import registry

V, ALPHAS = 257, (0.05, 0.5)


def evidence(N_docs=700, total_blocks=90_000, seed=0):
    rng = np.random.default_rng(seed)
    lows = np.array([loss_range(a, V)[0] for a in ALPHAS])[:, None]
    spans = np.array([delta_range(a, V) for a in ALPHAS])[:, None]
    tokens = TokenEvidence(n=total_blocks * 128, block_size=128, block_indices=np.arange(total_blocks), sampled=False,
                           loss=lows + spans * rng.uniform(0.25, 0.35, (2, total_blocks)),
                           xi2=rng.uniform(0.0, 0.02, (2, total_blocks)))
    docs = DocumentEvidence(N=N_docs, indices=rng.integers(0, N_docs, 50), bpd=lows + spans * rng.uniform(0.2, 0.4, (2, 50)),
                            topk_error={1: rng.uniform(0.3, 0.6, 50)}, tokens_scored=5000)
    return Evidence(vocab_size=V, alphas=ALPHAS, documents=docs, tokens=tokens)


def build(*specs, **options):
    return [registry("bound").config(s, options.get(s)).build() for s in specs]


C = Complexity(code_bits=13_000, extra_bits=7 + 1.0)


def test_the_headline_is_the_smallest_token_bound_at_delta_over_K():
    ev = evidence()
    h = headline(build("subsampling", "azuma", "freedman", "pacbayes"), ev, C, 0.05, "token_bpd")
    assert h["candidates"] == 2 and h["candidate_names"] == ["token_azuma_bpd", "token_freedman_bpd"]
    assert h["delta_each"] == 0.025 and h["target"] == "token_bpd"
    # independently: Azuma by its formula at delta / 2; the headline can only be at or below it
    azuma = min(azuma_bound(ev.tokens.loss[a].mean(), ev.tokens.n, C.nats, delta_range(al, V), 0.025)
                for a, al in enumerate(ALPHAS))
    assert h["value"] <= azuma + 1e-12
    recomputed = [r.value for e in build("azuma", "freedman") for r in e.compute(ev, C, 0.025)]
    assert h["value"] == pytest.approx(min(recomputed), rel=1e-12)
    assert h["value"] > min(r.value for e in build("azuma", "freedman") for r in e.compute(ev, C, 0.05))


def test_document_bounds_do_not_compete_and_are_vacuous_by_construction_on_a_small_corpus():
    ev = evidence(N_docs=694)
    h = headline(build("subsampling", "pacbayes"), ev, C, 0.05, "document_bpd")
    assert h["candidates"] == 0 and h["value"] is None and h["name"] is None
    assert set(h["dropped_vacuous_by_construction"]) == {"document_bpd", "document_bpd_kl"}
    big = evidence(N_docs=10**8)  # enough documents: both compete
    h = headline(build("subsampling", "pacbayes"), big, C, 0.05, "document_bpd")
    assert h["candidates"] == 2 and h["delta_each"] == 0.025


def test_the_candidates_do_not_depend_on_the_evidence_values():
    """K is fixed by sizes, bits and delta: changing every loss leaves the candidate set unchanged."""
    specs = build("subsampling", "azuma", "freedman", "pacbayes")
    a, b = evidence(seed=0), evidence(seed=1)
    b.tokens.loss = b.tokens.loss * 0 + np.array([loss_range(al, V)[1] for al in ALPHAS])[:, None]  # worst possible
    ha, hb = headline(specs, a, C, 0.05, "token_bpd"), headline(specs, b, C, 0.05, "token_bpd")
    assert ha["candidate_names"] == hb["candidate_names"]
    floor = floor_evidence(b)
    assert np.allclose(floor.tokens.loss, floor_evidence(a).tokens.loss) and not floor.tokens.xi2.any()


def test_sequence_bounds_never_compete():
    ev = evidence()
    estimators = [registry("bound").config("subsampling", {"sequences": True}).build(), *build("azuma")]
    h = headline(estimators, ev, C, 0.05, "sequence_bpd")
    assert h["candidates"] == 0 and h["excluded_for_assumptions"] == ["sequence_bpd"]


def test_more_candidates_cost_more():
    """Adding an estimator for the same target splits delta further: the same bound gets larger."""
    ev = evidence()
    one = headline(build("azuma"), ev, C, 0.05, "token_bpd")
    assert one["candidates"] == 1 and one["value"] == pytest.approx(build("azuma")[0].compute(ev, C, 0.05)[0].value)
    two = [r.value for r in build("azuma")[0].compute(ev, C, 0.025)]
    assert two[0] > one["value"] and math.isfinite(two[0])
