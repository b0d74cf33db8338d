"""Estimators on synthetic evidence: structure, alpha choice, validation, monotonicity."""

import json
import math

import numpy as np
import pytest

from sublora.bounds.estimators.azuma import azuma_bound
from sublora.bounds.estimators.freedman import freedman_bound, lambda_grid
from sublora.bounds.estimators.subsampling import SEQUENCE_ASSUMPTION, subsampling_bound
from sublora.bounds.smoothing import delta_range, freedman_range, loss_range
from sublora.core.bound import Complexity, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.errors import BoundError
from sublora.core.registry import registry

V = 1000
ALPHAS = (0.01, 0.1, 0.5)
ESTIMATORS = ["subsampling", "azuma", "freedman"]


def _losses(rng, shape):
    """Per-alpha losses inside each alpha's smoothed range, smaller alpha -> lower mean loss."""
    out = np.empty((len(ALPHAS), *shape))
    for a, alpha in enumerate(ALPHAS):
        lo, hi = loss_range(alpha, V)
        out[a] = lo + (hi - lo) * rng.beta(2, 8, size=shape) * (0.5 + a)
    return np.clip(out, [[loss_range(al, V)[0]] for al in ALPHAS], [[loss_range(al, V)[1]] for al in ALPHAS])


def make_evidence(sampled=False, blocks=40, total_blocks=40, docs=50, seed=0):
    rng = np.random.default_rng(seed)
    documents = DocumentEvidence(
        N=10_000, indices=rng.integers(0, 10_000, docs), bpd=_losses(rng, (docs,)),
        topk_error={1: rng.uniform(0.3, 0.9, docs), 10: rng.uniform(0.0, 0.4, docs)}, tokens_scored=docs * 100,
    )
    tokens = TokenEvidence(
        n=total_blocks * 64, block_size=64,
        block_indices=rng.integers(0, total_blocks, blocks) if sampled else np.arange(blocks),
        sampled=sampled, loss=_losses(rng, (blocks,)), xi2=rng.uniform(0.0, 0.2, (len(ALPHAS), blocks)),
    )
    return Evidence(vocab_size=V, alphas=ALPHAS, documents=documents, tokens=tokens)


def build(name, **options):
    if name == "subsampling+sequences":
        name, options = "subsampling", {"sequences": True, **options}
    return registry("bound").config(name, options).build()


def complexity(bits=5000):
    return Complexity(code_bits=bits, extra_bits=7 + math.log2(len(ALPHAS)), extra_breakdown={"hyper": 7.0})


@pytest.mark.parametrize("name", [*ESTIMATORS, "subsampling+sequences"])
@pytest.mark.parametrize("sampled", [False, True])
def test_result_contract(name, sampled):
    evidence = make_evidence(sampled=sampled, blocks=30 if sampled else 40)
    results = build(name).compute(evidence, complexity(), 0.05)
    assert results
    for r in results:
        assert r.estimator == name.split("+")[0]
        assert r.assumptions == ([SEQUENCE_ASSUMPTION] if r.name.startswith("sequence") else [])
        assert r.value == pytest.approx(r.empirical + r.complexity_term + r.confidence_term)
        assert r.complexity_term > 0 and r.confidence_term > 0
        assert r.vacuous == (r.value >= r.random_guess)
        for key in ("N", "n", "delta", "alpha", "Delta", "code_bits", "prefix_bits", "extra_bits"):
            assert key in r.inputs, key
        json.dumps(r.model_dump())  # plain JSON
    names = [r.name for r in results]
    expected = {"subsampling": ["document_bpd", "document_top1", "document_top10"],
                "subsampling+sequences": ["document_bpd", "document_top1", "document_top10", "sequence_bpd"],
                "azuma": ["token_azuma_bpd"], "freedman": ["token_freedman_bpd"]}[name]
    assert names == expected
    if not name.startswith("subsampling"):
        assert results[0].inputs["sampled"] is sampled and results[0].inputs["m"] == evidence.tokens.blocks
    if name == "freedman":
        assert {"sigma_hat", "lambda", "grid_size"} <= set(results[0].inputs)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_reports_best_alpha_and_recomputes_by_hand(name):
    evidence = make_evidence()
    c = complexity()
    r = build(name).compute(evidence, c, 0.05)[0]
    a = r.inputs["alpha_index"]
    assert r.inputs["alpha"] == ALPHAS[a]
    if name == "subsampling":  # the reference's bracket, its sample term at (1 - r) delta / |A|
        r_ = 50 / (50 + 10_000)
        bracket = (math.sqrt((c.nats - math.log(r_ * 0.05)) / (2 * 10_000))
                   + math.sqrt(-math.log((1 - r_) * 0.05 / len(ALPHAS)) / (2 * 50)))
        per_alpha = [evidence.documents.bpd[i].mean() + delta_range(al, V) * bracket for i, al in enumerate(ALPHAS)]
    elif name == "azuma":
        per_alpha = [azuma_bound(evidence.tokens.loss[i].mean(), evidence.tokens.n, c.nats, delta_range(al, V), 0.05)
                     for i, al in enumerate(ALPHAS)]
    else:
        per_alpha = [freedman_bound(evidence.tokens.loss[i].mean(), evidence.tokens.xi2[i].mean(), evidence.tokens.n,
                                    c.nats, freedman_range(al, V), 0.05, lambda_grid()) for i, al in enumerate(ALPHAS)]
    assert r.value == pytest.approx(min(per_alpha), rel=1e-12)
    assert a == int(np.argmin(per_alpha))


def test_top_k_uses_unit_range_and_no_alpha():
    evidence = make_evidence()
    c = complexity()
    top1 = build("subsampling").compute(evidence, c, 0.05)[1]
    assert top1.inputs["alpha"] is None and top1.inputs["Delta"] == 1.0
    expected = subsampling_bound(evidence.documents.topk_error[1].mean(), 10_000, 50, c.nats, 1.0, 0.05)
    assert top1.value == pytest.approx(expected)
    assert top1.random_guess == pytest.approx(1 - 1 / V) and top1.units == "error rate"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_no_evidence_no_bound(name):
    assert build(name).compute(Evidence(vocab_size=V, alphas=ALPHAS), complexity(), 0.05) == []


@pytest.mark.parametrize("name", ESTIMATORS)
@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 1.5])
def test_bad_delta_rejected(name, delta):
    with pytest.raises(BoundError, match="delta"):
        build(name).compute(make_evidence(), complexity(), delta)


def test_empty_or_inconsistent_evidence_rejected():
    evidence = make_evidence()
    evidence.documents.N = 0
    with pytest.raises(BoundError, match="N"):
        build("subsampling").compute(evidence, complexity(), 0.05)
    evidence = make_evidence(blocks=10, total_blocks=40)  # claims complete but holds 10 of 40 blocks
    with pytest.raises(BoundError, match="every block"):
        build("azuma").compute(evidence, complexity(), 0.05)
    evidence = make_evidence()
    evidence.tokens.loss = evidence.tokens.loss + 100.0  # outside the smoothed range
    with pytest.raises(BoundError, match="range"):
        build("freedman").compute(evidence, complexity(), 0.05)
    with pytest.raises(BoundError, match="n"):
        subsampling_bound(0.5, 100, 0, 0.0, 1.0, 0.05)
    with pytest.raises(BoundError, match="n"):
        azuma_bound(0.5, 0, 0.0, 1.0, 0.05)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_more_bits_never_lower_the_bound(name):
    evidence = make_evidence(sampled=True, blocks=30)
    estimator = build(name)
    values = [[r.value for r in estimator.compute(evidence, complexity(bits), 0.05)] for bits in (1, 10, 10**3, 10**7)]
    assert np.all(np.diff(np.array(values), axis=0) >= 0)


def test_more_data_never_raises_the_bound():
    sizes = [10, 100, 1000, 10**4, 10**6]
    div, lambdas = 5000 * math.log(2), lambda_grid()
    for N in sizes:
        assert np.all(np.diff([subsampling_bound(0.3, N, n, div, 1.0, 0.05) for n in sizes]) <= 0)
        assert np.all(np.diff([subsampling_bound(0.3, n, N, div, 1.0, 0.05) for n in sizes]) <= 0)
    assert np.all(np.diff([azuma_bound(0.3, n, div, 1.0, 0.05) for n in sizes]) <= 0)
    for sigma in (0.0, 0.1, 1.0):
        assert np.all(np.diff([freedman_bound(0.3, sigma, n, div, 1.0, 0.05, lambdas) for n in sizes]) <= 0)


def test_freedman_beats_azuma_when_spread_is_small_and_grid_options():
    lambdas, div = lambda_grid(), 100 * math.log(2)
    assert freedman_bound(3.0, 0.01, 10**6, div, 10.0, 0.05, lambdas) < azuma_bound(3.0, 10**6, div, 10.0, 0.05)
    grid = lambda_grid(50, 1e-3, 0.5)
    assert grid.size == 50 and grid[0] == pytest.approx(1e-3) and grid[-1] == pytest.approx(0.5)
    r = build("freedman", grid_size=50, lambda_max=0.5).compute(make_evidence(), complexity(), 0.05)[0]
    assert r.inputs["grid_size"] == 50 and r.inputs["lambda"] <= 0.5
    with pytest.raises(Exception, match="lambda_min"):
        build("freedman", lambda_min=0.9, lambda_max=0.5)


def _ucb(values, R, d, kind):
    m = values.size
    if kind == "hoeffding":
        return values.mean() + R * math.sqrt(math.log(1 / d) / (2 * m))
    return values.mean() + math.sqrt(2 * values.var(ddof=1) * math.log(2 / d) / m) + 7 * R * math.log(2 / d) / (3 * (m - 1))


@pytest.mark.parametrize("kind", ["hoeffding", "bernstein"])
def test_sampled_token_bounds_pay_the_alpha_choice_in_every_sample_term(kind):
    """Every alpha's sample event at f delta / |A| (Azuma), f delta / (2 |A|) for each of Freedman's two limits."""
    evidence = make_evidence(sampled=True, blocks=30)
    c, t, A = complexity(), evidence.tokens, len(ALPHAS)
    azuma = [azuma_bound(_ucb(t.loss[i], delta_range(al, V), 0.025 / A, kind), t.n, c.nats, delta_range(al, V), 0.025)
             for i, al in enumerate(ALPHAS)]
    assert build("azuma", subsample_bound=kind).compute(evidence, c, 0.05)[0].value == pytest.approx(min(azuma), rel=1e-12)
    freedman = [freedman_bound(_ucb(t.loss[i], delta_range(al, V), 0.025 / (2 * A), kind),
                               min(1.0, _ucb(t.xi2[i], 1.0, 0.025 / (2 * A), kind)), t.n, c.nats, freedman_range(al, V),
                               0.025, lambda_grid()) for i, al in enumerate(ALPHAS)]
    r = build("freedman", subsample_bound=kind).compute(evidence, c, 0.05)[0]
    assert r.value == pytest.approx(min(freedman), rel=1e-12)
    assert r.inputs["subsample_bound"] == kind


def test_bernstein_is_tighter_when_block_means_spread_little():
    evidence = make_evidence(sampled=True, blocks=2000, total_blocks=10**6)
    for a in range(len(ALPHAS)):  # block means spread ~ 1 % of the range
        lo, hi = loss_range(ALPHAS[a], V)
        evidence.tokens.loss[a] = lo + (hi - lo) * (0.3 + 0.01 * np.random.default_rng(a).standard_normal(2000))
    hoeffding = build("azuma", subsample_bound="hoeffding").compute(evidence, complexity(), 0.05)[0]
    bernstein = build("azuma").compute(evidence, complexity(), 0.05)[0]
    assert bernstein.value < hoeffding.value - 0.1


def test_sequence_bounds_only_when_asked_and_carry_their_assumption():
    evidence = make_evidence()
    assert not [r for r in build("subsampling").compute(evidence, complexity(), 0.05) if r.name.startswith("sequence")]
    seq = [r for r in build("subsampling", sequences=True).compute(evidence, complexity(), 0.05)
           if r.name.startswith("sequence")]
    assert seq and all(r.assumptions == [SEQUENCE_ASSUMPTION] for r in seq)


@pytest.mark.parametrize("name", ["azuma", "freedman", "subsampling+sequences", "subsampling", "pacbayes"])
def test_a_token_outside_the_range_is_refused_even_when_the_means_are_inside(name):
    """Block and document means can hide a per-token loss above log2(V / alpha): the scorer's extremes are checked."""
    evidence = make_evidence()
    A = len(ALPHAS)
    extremes = np.array([loss_range(al, V) for al in ALPHAS])
    evidence.tokens.loss_extremes = extremes.copy()
    evidence.documents.loss_extremes = extremes.copy()
    build(name).compute(evidence, complexity(), 0.05)  # at the edges: fine
    bad = extremes.copy()
    bad[A - 1, 1] += 1.0
    evidence.tokens.loss_extremes = evidence.documents.loss_extremes = bad
    with pytest.raises(BoundError, match="per-token"):
        build(name).compute(evidence, complexity(), 0.05)
