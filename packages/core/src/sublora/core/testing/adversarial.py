"""Adversarial scenarios for the bound contract: data on which a valid bound is nearly tight.

On the benign scenarios of ``bound_contract`` every bound sits far above its truth, so a bound
missing a fifth of its margin passes them too. Here the terms of the formulas in docs/bounds.md
are made nearly tight, so the contract tells a valid bound from a weakened one (measured power:
docs/bounds.md section 11, ``python tests/bounds/bound_weakenings.py``). Numpy only; each trial is
built when it is used. Every scenario is checked at its own delta (``Scenario.delta``).

- ``select_*``: a choice after seeing data, paid for with a real prior. 2^c hypotheses
  (c = 400 bits, prior 2^-c each) have their own losses on the same training set: two-point
  at lo(a) / hi(a) with p = 1/2 (the worst case of a range-based term), independent across
  hypotheses. The one with the smallest training risk is certified with complexity c bits; its
  truth is lo + p Delta. Its risk lies ~23.3 standard deviations below the truth where the
  union bound allows 23.7, so the complexity-dependent term is tight to ~1.5 %. Exact and
  cheap: the smallest of the 2^c binomial counts is drawn from its own distribution
  (``min_binomial``), then the chosen hypothesis' units as a uniformly random arrangement of
  that count (its units are exchangeable given the count). V = 4, alpha = 0.5, so
  Delta = log2 5 differs from Delta_F = log2 8 and from Delta with V - 1.
    * ``select_documents``: N = 2^14 i.i.d. documents, all N drawn with replacement.
    * ``select_tokens``: 2^16 i.i.d. tokens, one-token blocks, every block evaluated.
    * ``select_tokens_sampled``: the same, 2^16 blocks drawn with replacement: the subsample
      term adds only ~3 standard deviations to a ~24-deviation martingale term.
    * ``select_rare_tokens``: losses at hi(a) with p = 1/64, else lo(a), and Y = lo(a)
      (V = 2^16, alpha = 0.01, Delta / Delta_F = 0.9995): xi^2 is ~1 on the rare tokens and 0
      elsewhere, so the variance-adaptive (Freedman) term is tight while range-based ones are loose.
- ``alphas_*``: the choice of alpha exploits noise. |A| = 64 alphas in a narrow band have
  independent losses with the same truth (alphas in [0.3, 0.3001], so their ranges agree to
  0.02 %), and the best alpha is the one whose sample deviated most: a sample term at delta
  instead of delta / |A| fails in a third to two thirds of the trials. Few units are drawn from
  many (2^20), so the sample term dominates. Checked at delta = 0.1.
    * ``alphas_documents``: two-point document losses, n = 64 drawn.
    * ``alphas_tokens_sampled``: a long-memory source: every block repeats its first token's
      loss (block means two-point, the worst case for a term over blocks), m = 256 blocks of
      16 tokens drawn. Y is the conditional mean (exact for the repeated tokens).
- ``rare_tokens_sampled``: the near-worst case of an empirical-Bernstein limit: repeating
  blocks at hi(a) with probability 1/m, m = 256 drawn; a third of the samples show no spread,
  and only the range term 7 R ln(2/d) / (3(m - 1)) keeps the limit above the truth.

The heavy scenarios (``HEAVY_SCENARIOS``, 10-25 s per estimator at 100 trials) run in the slow
tests: ``alphas_documents_wide`` (2048 alphas, 64 documents drawn, delta = 0.2) resolves a 20 %
cut of a Hoeffding sample term at 200 trials; ``alphas_tokens_wide`` (256 alphas, 4096 repeating
blocks drawn, delta = 0.5) an empirical-Bernstein sample term without its delta / |A|.

Y: the Freedman bound needs Y_k known before token k with X_k - Y_k <= Delta_F; real evidence
uses the entropy of the prediction, these scenarios the value that makes the bound tightest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sublora.core.bound import Complexity, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.testing.trial import Trial

#: V and the single alpha of the selection scenarios: small V, large alpha, so Delta(a) = log2 5 differs
#: from Delta_F(a) = log2 8 and from what V - 1 would give (a bound using the wrong range is caught)
VOCAB, ALPHA = 4, 0.5
#: V and alpha where Delta(a) / Delta_F(a) is close to 1 (22.63 / 22.64 bits): a Freedman bound with
#: Y = lo(a) is tight there (rare-loss scenario), and many alphas share nearly the same range
WIDE_VOCAB, RARE_ALPHA = 2**16, 0.01
#: bits of the selection scenarios' prior: 2^BITS hypotheses
BITS = 400
TOPK = (1, 10)


def _range(alpha: float, V: int) -> tuple[float, float, float, float]:
    """(lo, hi, Delta, Delta_F) of the smoothed loss."""
    lo, hi = -math.log2(1.0 - alpha + alpha / V), math.log2(V / alpha)
    return lo, hi, hi - lo, hi


def min_binomial(rng: np.random.Generator, n: int, p: float, log_k: float, size: int) -> np.ndarray:
    """Draws of the smallest of e^log_k independent Binomial(n, p) counts, by inverse CDF.

    P(min <= x) = 1 - (1 - F(x))^K with F the binomial CDF, evaluated in logs over the
    window where it moves (the mass outside it is below 1e-30), so K may be 2^400.
    """
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    reach = math.sqrt(2.0 * max(log_k, 0.0)) + 12.0
    start, stop = max(0, math.floor(mean - reach * sd)), min(n, math.ceil(mean + 12.0 * sd))
    x = np.arange(start, stop + 1)
    anchor = (math.lgamma(n + 1) - math.lgamma(start + 1) - math.lgamma(n - start + 1)
              + start * math.log(p) + (n - start) * math.log1p(-p))
    steps = np.log((n - x[:-1]) / (x[:-1] + 1.0)) + math.log(p / (1.0 - p))  # log pmf(x+1) - log pmf(x)
    log_cdf = np.logaddexp.accumulate(anchor + np.concatenate([[0.0], np.cumsum(steps)]))
    cdf = np.minimum(np.exp(log_cdf), 1.0 - 1e-16)
    log_tail = np.where(log_cdf < -30.0, log_cdf, np.log(-np.log1p(-cdf)))  # log(-log(1 - F))
    p_min = -np.expm1(-np.exp(np.minimum(log_k + log_tail, 700.0)))  # P(min <= x)
    return x[np.minimum(np.searchsorted(p_min, rng.random(size)), x.size - 1)]


def _prior(bits: float, alphas: tuple[float, ...]) -> Complexity:
    """A uniform prior over 2^bits hypotheses plus the alpha grid's union bound (total_bits = bits + log2 |A|)."""
    grid = math.log2(len(alphas))
    return Complexity(code_bits=1, extra_bits=bits - 1.0 + grid,
                      extra_breakdown={"hypotheses": bits - 1.0, "alpha_grid": grid})


def _trial(evidence: Evidence, truth: dict, complexity: Complexity) -> Trial:
    return Trial(evidence, truth, complexity)


def _token_truth(alpha: float, token: float, sequence: float, topk: float) -> dict:
    return {("token_bpd", alpha): token, ("sequence_bpd", alpha): sequence,
            **{(f"sequence_top{k}", None): topk for k in TOPK}}


def select_documents(trials: int, seed: int = 0, N: int = 2**14, n: int = 2**14, bits: float = BITS,
                     p: float = 0.5, V: int = VOCAB, alpha: float = ALPHA) -> Iterator:
    """The best of 2^bits hypotheses on N i.i.d. documents (loss hi(a) with probability p, else lo(a))."""
    rng = np.random.default_rng(seed)
    lo, _, Delta, _ = _range(alpha, V)
    counts = min_binomial(rng, N, p, bits * math.log(2.0), trials)  # bad documents of the chosen hypothesis
    complexity = _prior(bits, (alpha,))
    truth = {("document_bpd", alpha): lo + Delta * p, **{(f"document_top{k}", None): p for k in TOPK}}
    for count in counts:
        idx = rng.integers(0, N, n)  # documents are exchangeable: the first `count` are the bad ones
        bad = (idx < count).astype(np.float64)
        docs = DocumentEvidence(N=N, indices=idx, bpd=(lo + Delta * bad)[None], topk_error={k: bad for k in TOPK},
                                tokens_scored=100 * n)
        yield _trial(Evidence(vocab_size=V, alphas=(alpha,), documents=docs), truth, complexity)


def select_tokens(trials: int, seed: int = 0, blocks: int = 2**16, block_size: int = 1, bits: float = BITS,
                  p: float = 0.5, sampled_blocks: int | None = None, Y: str = "mean", V: int = VOCAB,
                  alpha: float = ALPHA) -> Iterator:
    """The best of 2^bits hypotheses on i.i.d. tokens (hi(a) with probability p, else lo(a)).

    Every block evaluated, or ``sampled_blocks`` drawn with replacement. ``Y``: ``mean``
    (Y_k = mu_k, xi^2 the squared deviation) or ``lo`` (Y_k = lo(a), xi^2 nonzero on hi tokens only).
    """
    rng = np.random.default_rng(seed)
    lo, _, Delta, Delta_F = _range(alpha, V)
    n = blocks * block_size
    counts = min_binomial(rng, n, p, bits * math.log(2.0), trials)
    complexity = _prior(bits, (alpha,))
    truth = _token_truth(alpha, lo + Delta * p, lo + Delta * p, p)
    # xi^2 of a hi and of a lo token: xi = (Y - X) / Delta_F
    Y0 = Delta * p if Y == "mean" else 0.0  # Y - lo
    xi2_hi, xi2_lo = ((Y0 - Delta) / Delta_F) ** 2, (Y0 / Delta_F) ** 2
    for count in counts:
        if sampled_blocks is None:
            idx = np.arange(blocks)
            if block_size == 1:
                hi = (rng.permutation(n) < count).astype(np.int64)
            else:
                hi = rng.multivariate_hypergeometric(np.full(blocks, block_size), int(count))
        elif block_size == 1:  # blocks are exchangeable: label the hi ones 0 .. count - 1
            idx = rng.integers(0, blocks, sampled_blocks)
            hi = (idx < count).astype(np.int64)
        else:
            idx = rng.integers(0, blocks, sampled_blocks)
            unique, inverse = np.unique(idx, return_inverse=True)
            colors = np.append(np.full(unique.size, block_size), n - unique.size * block_size)
            hi = rng.multivariate_hypergeometric(colors, int(count))[:-1][inverse]
        share = hi / block_size
        tokens = TokenEvidence(n=n, block_size=block_size, block_indices=idx, sampled=sampled_blocks is not None,
                               loss=(lo + Delta * share)[None], xi2=(xi2_hi * share + xi2_lo * (1.0 - share))[None],
                               topk_error={k: share for k in TOPK})
        yield _trial(Evidence(vocab_size=V, alphas=(alpha,), tokens=tokens), truth, complexity)


def _narrow_alphas(size: int, lo: float = 0.30, hi: float = 0.3001) -> tuple[float, ...]:
    return tuple(float(a) for a in np.linspace(lo, hi, size))


def _equal_truth(alphas: tuple[float, ...], V: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(truth t, lo, Delta, p) per alpha with lo(a) + p(a) Delta(a) = t, p near 1/2 (largest spread)."""
    ranges = np.array([_range(a, V)[:3] for a in alphas])  # (A, 3): lo, hi, Delta
    lo, Delta = ranges[:, 0], ranges[:, 2]
    middle = len(alphas) // 2
    t = float(lo[middle] + 0.5 * Delta[middle])
    return t, lo, Delta, (t - lo) / Delta


def _drawn_units(rng: np.random.Generator, population: int, probs: np.ndarray,
                 draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, values, ones): ``draws`` units drawn with replacement from ``population`` i.i.d. 0/1 units, one
    row of values per probability (a unit drawn twice shows the same value), and each row's ones in the whole
    population (the drawn distinct units' plus a binomial count for the others)."""
    idx = rng.integers(0, population, draws)
    unique, inverse = np.unique(idx, return_inverse=True)
    seen = rng.random((probs.size, unique.size)) < probs[:, None]  # (rows, distinct drawn units)
    ones = seen.sum(axis=1) + rng.binomial(population - unique.size, probs)
    return idx, seen.astype(np.float64)[:, inverse], ones


def alphas_documents(trials: int, seed: int = 0, alphas: int = 64, N: int = 2**20, n: int = 64,
                     V: int = VOCAB) -> Iterator:
    """A fixed hypothesis; |A| alphas with independent two-point document losses and equal truths."""
    rng = np.random.default_rng(seed)
    grid = _narrow_alphas(alphas)
    t, lo, Delta, p = _equal_truth(grid, V)
    complexity = _prior(1.0, grid)
    truth = {**{("document_bpd", a): t for a in grid}, **{(f"document_top{k}", None): 0.5 for k in TOPK}}
    for _ in range(trials):
        idx, values, _ = _drawn_units(rng, N, np.append(p, 0.5), n)  # last row: top-k errors
        docs = DocumentEvidence(N=N, indices=idx, bpd=lo[:, None] + Delta[:, None] * values[:-1],
                                topk_error={k: values[-1] for k in TOPK}, tokens_scored=100 * n)
        yield _trial(Evidence(vocab_size=V, alphas=grid, documents=docs), truth, complexity)


def repeating_blocks(trials: int, seed: int = 0, alphas: int = 64, blocks: int = 2**20, block_size: int = 16,
                     sampled_blocks: int = 256, p: float | None = None, V: int = VOCAB) -> Iterator:
    """A long-memory source: each block's first token is fresh, the rest repeat its loss, so block means are
    two-point. |A| alphas with independent losses and equal truths (``p`` None), or P(hi) = ``p`` at every alpha."""
    rng = np.random.default_rng(seed)
    grid = _narrow_alphas(alphas) if alphas > 1 else (ALPHA,)
    if p is None:
        _, lo, Delta, probs = _equal_truth(grid, V)
    else:
        ranges = np.array([_range(a, V)[:3] for a in grid])
        lo, Delta, probs = ranges[:, 0], ranges[:, 2], np.full(len(grid), p)
    Delta_F = np.array([_range(a, V)[3] for a in grid])
    mu = lo + Delta * probs  # conditional mean of a block's first token = the sequence truth
    complexity = _prior(1.0, grid)
    n = blocks * block_size
    for _ in range(trials):
        idx, values, ones = _drawn_units(rng, blocks, np.append(probs, 0.5), sampled_blocks)  # last: top-k errors
        X = lo[:, None] + Delta[:, None] * values[:-1]  # (A, m) block means = first token's loss
        xi2 = ((mu[:, None] - X) / Delta_F[:, None]) ** 2 / block_size  # Y = mu on the first token, exact after
        # truth: (1/n) sum mu_k = mean over all blocks of (mu + (block_size - 1) X_b) / block_size
        token = (mu + (block_size - 1) * (lo + Delta * ones[:-1] / blocks)) / block_size
        truth = {**{("token_bpd", a): float(v) for a, v in zip(grid, token)},
                 **{("sequence_bpd", a): float(v) for a, v in zip(grid, mu)},
                 **{(f"sequence_top{k}", None): 0.5 for k in TOPK}}
        tokens = TokenEvidence(n=n, block_size=block_size, block_indices=idx, sampled=True, loss=X, xi2=xi2,
                               topk_error={k: values[-1] for k in TOPK})
        yield _trial(Evidence(vocab_size=V, alphas=grid, tokens=tokens), truth, complexity)


@dataclass(frozen=True)
class Scenario:
    """A named adversarial scenario: its trials, the delta it is checked at, and what it makes tight."""

    name: str
    simulate: Callable[..., Iterator]  # (trials, seed) -> iterator of Trial
    delta: float
    what: str


def _scenarios() -> list[Scenario]:
    S = Scenario
    return [
        S("select_documents", select_documents, 0.05,
          "best of 2^400 hypotheses on 2^14 documents, 2^14 drawn: Occam / PAC-Bayes terms"),
        S("select_tokens", select_tokens, 0.05,
          "best of 2^400 hypotheses on 2^16 i.i.d. tokens, every block: martingale and Occam terms"),
        S("select_tokens_sampled", lambda trials, seed=0: select_tokens(trials, seed, sampled_blocks=2**16), 0.05,
          "the same, 2^16 one-token blocks drawn: the martingale term of a sampled certificate"),
        S("select_rare_tokens", lambda trials, seed=0: select_tokens(
            trials, seed, blocks=2**14, block_size=64, p=1 / 64, Y="lo", V=WIDE_VOCAB, alpha=RARE_ALPHA), 0.05,
          "best of 2^400, losses at hi(a) with p = 1/64, Y = lo(a): the variance-adaptive (Freedman) term"),
        S("alphas_documents", alphas_documents, 0.1,
          "64 alphas with independent losses, 64 of 2^20 documents drawn: delta / |A| of sample terms"),
        S("alphas_tokens_sampled", repeating_blocks, 0.1,
          "64 alphas, repeating blocks, 256 of 2^20 blocks drawn: delta / |A| of sample terms"),
        S("rare_tokens_sampled", lambda trials, seed=0: repeating_blocks(
            trials, seed, alphas=1, sampled_blocks=256, p=1 / 256), 0.05,
          "repeating blocks at hi(a) with p = 1/m, m = 256 drawn: a sample term that vanishes without spread"),
        # heavy: seconds to tens of seconds per estimator
        S("alphas_documents_wide", lambda trials, seed=0: alphas_documents(trials, seed, alphas=2048), 0.2,
          "2048 alphas, 64 of 2^20 documents drawn: a 20 % cut of a Hoeffding sample term (200 trials)"),
        S("alphas_tokens_wide", lambda trials, seed=0: repeating_blocks(
            trials, seed, alphas=256, sampled_blocks=4096), 0.5,
          "256 alphas, 4096 repeating blocks drawn: delta / |A| of empirical-Bernstein sample terms"),
    ]


SCENARIO_TABLE: dict[str, Scenario] = {s.name: s for s in _scenarios()}
ADVERSARIAL_SCENARIOS = ("select_documents", "select_tokens", "select_tokens_sampled", "select_rare_tokens",
                         "alphas_documents", "alphas_tokens_sampled", "rare_tokens_sampled")
HEAVY_SCENARIOS = ("alphas_documents_wide", "alphas_tokens_wide")


def iter_scenario(name: str, trials: int, seed: int = 0) -> Iterator:
    """The named scenario's trials, each built when it is used."""
    return SCENARIO_TABLE[name].simulate(trials, seed)


__all__ = [
    "ADVERSARIAL_SCENARIOS",
    "BITS",
    "HEAVY_SCENARIOS",
    "SCENARIO_TABLE",
    "Scenario",
    "alphas_documents",
    "iter_scenario",
    "min_binomial",
    "repeating_blocks",
    "select_documents",
    "select_tokens",
]
