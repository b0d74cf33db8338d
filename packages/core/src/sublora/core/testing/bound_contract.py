"""The bound-estimator contract: every number an estimator prints must be a valid bound.

Checks any ``sublora.bounds`` plugin can run on itself (numpy only, no model):

- ``check_bound_validity``: repeat the whole sample-and-bound procedure on synthetic data whose
  true risks are known exactly, and count how often a result falls below its truth. A valid
  bound fails in at most a delta fraction of trials; the check allows delta * T plus three
  binomial standard deviations. Scenarios:
    * ``documents``: N i.i.d. training documents with two-point losses (the worst case for
      Hoeffding-type terms) at each alpha and Bernoulli top-k errors; n of them drawn uniformly
      with replacement as the evidence. Truth: the population means.
    * ``tokens`` / ``tokens_sampled``: a token sequence from a known Markov source over V
      symbols, scored by a fixed, imperfect model (another transition matrix), smoothed at each
      alpha. X_k = -log2 p_h(x_k | x_{k-1}), mu_k = E[X_k | past] computed exactly from the
      source, Y_k = entropy of p_h(. | x_{k-1}). Every block evaluated, or m blocks drawn with
      replacement. Truth: (1/n) sum_k mu_k of that very sequence.
    * ``sequences``: the same, but every block is an independent chain whose context token is
      drawn from the source's stationary distribution pi, so blocks are i.i.d. sequences. Truth
      of ``token_bpd`` as above; of ``sequence_bpd``: the stationary expected loss
      sum_s pi(s) sum_v T[s, v] (-log2 p_h(v | s)), exactly; of ``sequence_top{k}``: the stationary
      probability that the next symbol is not among the model's k most likely.
  These benign scenarios leave every bound far above its truth: a bound missing a fifth of
  its margin passes them too.
- ``check_bound_adversarial``: the same count on scenarios where a valid bound is nearly tight
  (``sublora.core.testing.adversarial``: a hypothesis chosen among 2^400 after seeing the data,
  many alphas with independent losses, rare losses, repeating blocks), so a weakened bound
  fails in most trials.
- ``check_bound_monotone``: more bits never lower a result; more data never raises it.
- ``check_bound_results``: value = empirical + complexity_term + confidence_term, known targets.

Each result names its ``target`` (see ``sublora.core.bound.BoundResult``); the truth compared
with a result is that target's at the result's ``inputs["alpha"]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sublora.core.bound import (
    BoundConfig,
    BoundEstimator,
    BoundResult,
    Complexity,
    DocumentEvidence,
    Evidence,
    TokenEvidence,
)
from sublora.core.testing.adversarial import ADVERSARIAL_SCENARIOS, HEAVY_SCENARIOS, SCENARIO_TABLE, iter_scenario
from sublora.core.testing.trial import Trial

DELTA = 0.05
ALPHAS = (0.05, 0.5)
TOPK = (1, 10)
SCENARIOS = ("documents", "tokens", "tokens_sampled", "sequences")
#: trials per adversarial scenario in check_bound_contract (their failures are rarer than delta, their
#: weakened versions fail in most trials, so fewer trials resolve them)
ADVERSARIAL_TRIALS = 100
#: the targets the contract can check (a scenario may not provide every one: those results are skipped there)
KNOWN_TARGETS = re.compile(r"^(document_bpd|document_top\d+|token_bpd|sequence_bpd|sequence_top\d+)$")


@dataclass(frozen=True)
class Coverage:
    estimator: str
    scenario: str
    result: str
    trials: int
    failures: int
    allowed: float
    delta: float = DELTA

    @property
    def ok(self) -> bool:
        return self.failures <= self.allowed

    def __str__(self) -> str:
        return (f"{self.estimator} / {self.scenario} / {self.result}: {self.failures} failures in {self.trials} "
                f"trials (allowed {self.allowed:.1f} at delta = {self.delta})")


def _loss_range(alpha: float, V: int) -> tuple[float, float]:
    return -math.log2(1.0 - alpha + alpha / V), math.log2(V / alpha)


def allowed_failures(trials: int, delta: float = DELTA) -> float:
    """delta * T + 3 binomial standard deviations: a valid bound stays below this but rarely."""
    return delta * trials + 3.0 * math.sqrt(delta * (1.0 - delta) * trials)


def simulate_documents(trials: int, seed: int = 0, N: int = 200, n: int = 100, V: int = 16,
                       p: float = 0.5, q: dict[int, float] | None = None) -> list[Trial]:
    """I.i.d. documents: loss lo + Delta * Bernoulli(p) at every alpha, top-k error Bernoulli(q[k])."""
    q = q or {1: 0.6, 10: 0.2}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        u = rng.random(N) < p  # (N,) the training documents' loss indicator
        errors = {k: (rng.random(N) < q[k]).astype(np.float64) for k in TOPK}
        idx = rng.integers(0, N, n)  # (n,) the evaluated sample, with replacement
        bpd = np.stack([lo + (hi - lo) * u[idx] for lo, hi in (_loss_range(a, V) for a in ALPHAS)])  # (A, n)
        docs = DocumentEvidence(N=N, indices=idx, bpd=bpd, topk_error={k: e[idx] for k, e in errors.items()},
                                tokens_scored=n * 100)
        truth = {("document_bpd", a): lo + (hi - lo) * p for a, (lo, hi) in zip(ALPHAS, (_loss_range(a, V) for a in ALPHAS))}
        truth.update({(f"document_top{k}", None): q[k] for k in TOPK})
        out.append(Trial(Evidence(vocab_size=V, alphas=ALPHAS, documents=docs), truth))
    return out


def _markov(rng: np.random.Generator, V: int) -> tuple[np.ndarray, np.ndarray]:
    """(source T, model Q): V x V transition matrices; Q is T mixed with an unrelated matrix."""
    T = rng.dirichlet(np.full(V, 0.3), size=V)
    Q = 0.6 * T + 0.4 * rng.dirichlet(np.ones(V), size=V)
    return T, Q


def _stationary(T: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eig(T.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    return pi / pi.sum()


def simulate_tokens(trials: int, seed: int = 0, blocks: int = 64, block_size: int = 16, V: int = 4,
                    sampled_blocks: int | None = None, independent_blocks: bool = False) -> list[Trial]:
    """Token sequences from a Markov source scored by a fixed model; all blocks, or ``sampled_blocks`` drawn.

    ``independent_blocks``: every block is its own chain with a context token drawn from the
    stationary distribution (i.i.d. sequences); otherwise one chain runs through all blocks.
    """
    rng = np.random.default_rng(seed)
    T, Q = _markov(rng, V)
    pi = _stationary(T)
    n = blocks * block_size
    cum = T.cumsum(axis=1)

    def step(states: np.ndarray) -> np.ndarray:
        u = rng.random(states.shape)[..., None]
        return np.minimum((u > cum[states]).sum(axis=-1), V - 1)

    if independent_blocks:
        x = np.empty((trials, blocks, block_size + 1), dtype=np.int64)  # [..., 0]: each block's context
        x[..., 0] = rng.choice(V, size=(trials, blocks), p=pi)
        for k in range(1, block_size + 1):
            x[..., k] = step(x[..., k - 1])
        prev, cur = x[..., :-1].reshape(trials, n), x[..., 1:].reshape(trials, n)
    else:
        x = np.empty((trials, n + 1), dtype=np.int64)  # x[:, 0] is the context of the first target
        x[:, 0] = rng.integers(0, V, trials)
        for k in range(1, n + 1):
            x[:, k] = step(x[:, k - 1])
        prev, cur = x[:, :-1], x[:, 1:]  # (trials, n)
    # top-k errors of the model: rank of each next symbol among the model's predictions after each state
    rank = (Q[:, None, :] > Q[:, :, None]).sum(axis=-1)  # (V, V): rank[s, v] = symbols more likely than v
    wrong = {k: (rank >= k).astype(np.float64) for k in TOPK}  # (V, V) indicator per k
    topk_blocks = {k: w[prev, cur].reshape(trials, blocks, block_size).mean(-1) for k, w in wrong.items()}
    topk_truth = {k: float(pi @ (T * w).sum(axis=1)) for k, w in wrong.items()}
    per_alpha = []
    for alpha in ALPHAS:
        ph = (1.0 - alpha) * Q + alpha / V  # (V, V) smoothed model rows
        loss = -np.log2(ph)  # (V, V) loss of each next symbol after each state
        X = loss[prev, cur]  # (trials, n)
        mu = (T * loss).sum(axis=1)[prev]  # (trials, n) exact conditional means
        Y = (ph * loss).sum(axis=1)[prev]  # entropy of the smoothed prediction, bits
        xi2 = ((Y - X) / math.log2(V / alpha)) ** 2
        stationary = float(pi @ (T * loss).sum(axis=1))  # E[X] for a context drawn from pi
        per_alpha.append((X.reshape(trials, blocks, block_size).mean(-1), xi2.reshape(trials, blocks, block_size).mean(-1),
                          mu.mean(axis=1), stationary))
    out = []
    for t in range(trials):
        if sampled_blocks is None:
            idx = np.arange(blocks)
        else:
            idx = rng.integers(0, blocks, sampled_blocks)
        tokens = TokenEvidence(n=n, block_size=block_size, block_indices=idx, sampled=sampled_blocks is not None,
                               loss=np.stack([L[t, idx] for L, _, _, _ in per_alpha]),
                               xi2=np.stack([S[t, idx] for _, S, _, _ in per_alpha]),
                               topk_error={k: E[t, idx] for k, E in topk_blocks.items()})
        truth = {("token_bpd", a): float(M[t]) for a, (_, _, M, _) in zip(ALPHAS, per_alpha)}
        if independent_blocks:
            truth.update({("sequence_bpd", a): E for a, (_, _, _, E) in zip(ALPHAS, per_alpha)})
            truth.update({(f"sequence_top{k}", None): v for k, v in topk_truth.items()})
        out.append(Trial(Evidence(vocab_size=V, alphas=ALPHAS, tokens=tokens), truth))
    return out


def iter_trials(scenario: str, trials: int, seed: int = 0) -> Iterator[Trial]:
    """The scenario's trials, each built when it is used (adversarial ones hold large arrays)."""
    if scenario == "documents":
        return iter(simulate_documents(trials, seed))
    if scenario == "tokens":
        return iter(simulate_tokens(trials, seed))
    if scenario == "tokens_sampled":
        return iter(simulate_tokens(trials, seed, sampled_blocks=32))
    if scenario == "sequences":
        return iter(simulate_tokens(trials, seed, independent_blocks=True))
    if scenario in SCENARIO_TABLE:
        return iter_scenario(scenario, trials, seed)
    known = SCENARIOS + ADVERSARIAL_SCENARIOS + HEAVY_SCENARIOS
    raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(known)}")


def simulate(scenario: str, trials: int, seed: int = 0) -> list[Trial]:
    return list(iter_trials(scenario, trials, seed))


def resolve_estimator(spec: str | BoundConfig | BoundEstimator, options: dict | None = None) -> BoundEstimator:
    """A registered spec (``"pacbayes:kl"``), a config instance, or an estimator instance."""
    if isinstance(spec, BoundEstimator):
        return spec
    if isinstance(spec, BoundConfig):
        return spec.build()
    from sublora.core.registry import registry

    return registry("bound").config(spec, options).build()


def minimal_complexity(alphas: tuple[float, ...] = ALPHAS) -> Complexity:
    """One coded bit plus the alpha grid's union bound: a single fixed hypothesis."""
    grid = math.log2(len(alphas))
    return Complexity(code_bits=1, extra_bits=grid, extra_breakdown={"alpha_grid": grid})


def _truth(result: BoundResult, trial: Trial, name: str) -> float | None:
    """The true value of the result's target in this trial; None if this scenario does not provide it."""
    alpha = result.inputs.get("alpha")
    key = (result.target, None if alpha is None else float(alpha))
    assert KNOWN_TARGETS.match(result.target or ""), (
        f"{name}: result {result.name!r} has target {result.target!r}, which the contract cannot check "
        f"(known: document_bpd, document_top<k>, token_bpd, sequence_bpd); set BoundResult.target"
    )
    if key not in trial.truth:
        assert not any(t == result.target for t, _ in trial.truth), (
            f"{name}: result {result.name!r} at alpha {alpha}: no such alpha in the evidence")
        return None
    return trial.truth[key]


def scenario_delta(scenario: str) -> float:
    """The delta a scenario is checked at: DELTA, or an adversarial scenario's own (larger where that
    separates a valid bound from a weakened one in fewer trials)."""
    return SCENARIO_TABLE[scenario].delta if scenario in SCENARIO_TABLE else DELTA


def check_bound_validity(spec, options: dict | None = None, trials: int = 400, seed: int = 0,
                         scenarios: tuple[str, ...] = SCENARIOS, delta: float | None = None) -> list[Coverage]:
    """Monte-Carlo coverage of every result of the estimator in every scenario; AssertionError if one fails.

    ``scenarios`` may name benign (``SCENARIOS``) and adversarial (``ADVERSARIAL_SCENARIOS``,
    ``HEAVY_SCENARIOS``) ones. Each trial is bounded with its own complexity (the bits its
    hypothesis was chosen with) at ``delta``, or at each scenario's own (``scenario_delta``) when
    None. A scenario whose first trial gives no result is skipped: its evidence is of a kind the
    estimator does not use.
    """
    estimator = resolve_estimator(spec, options)
    name = getattr(estimator, "name", type(estimator).__name__)
    report: list[Coverage] = []
    for scenario in scenarios:
        counts: dict[str, int] = {}
        at = scenario_delta(scenario) if delta is None else delta
        for t, trial in enumerate(iter_trials(scenario, trials, seed)):
            complexity = trial.complexity or minimal_complexity(trial.evidence.alphas)
            results = estimator.compute(trial.evidence, complexity, at)
            if t == 0 and not results:
                break  # the estimator does not apply to this scenario's evidence (e.g. tokens only)
            for result in results:
                truth = _truth(result, trial, name)
                if truth is not None:
                    counts[result.name] = counts.get(result.name, 0) + int(truth > result.value)
        report += [Coverage(name, scenario, r, trials, f, allowed_failures(trials, at), at) for r, f in counts.items()]
    assert report, f"{name}: produced no result in any scenario ({', '.join(scenarios)})"
    failed = [c for c in report if not c.ok]
    assert not failed, "invalid bound: " + "; ".join(map(str, failed))
    return report


def _scaled(evidence: Evidence, factor: int) -> Evidence:
    """The same empirical evidence from ``factor`` times more training data."""
    docs = tokens = None
    if evidence.documents is not None:
        d = evidence.documents
        docs = DocumentEvidence(N=d.N * factor, indices=d.indices, bpd=d.bpd, topk_error=d.topk_error,
                                tokens_scored=d.tokens_scored)
    if evidence.tokens is not None:
        t = evidence.tokens
        if t.sampled:  # the same sampled blocks, from a longer sequence
            tokens = TokenEvidence(n=t.n * factor, block_size=t.block_size, block_indices=t.block_indices,
                                   sampled=True, loss=t.loss, xi2=t.xi2, topk_error=t.topk_error)
        else:  # every block of a sequence made of the original repeated
            tokens = TokenEvidence(n=t.n * factor, block_size=t.block_size,
                                   block_indices=np.arange(t.blocks * factor), sampled=False,
                                   loss=np.tile(t.loss, factor), xi2=np.tile(t.xi2, factor),
                                   topk_error={k: np.tile(e, factor) for k, e in t.topk_error.items()})
    return Evidence(vocab_size=evidence.vocab_size, alphas=evidence.alphas, documents=docs, tokens=tokens)


def check_bound_monotone(spec, options: dict | None = None, seed: int = 0, delta: float = DELTA) -> None:
    """More bits never give a smaller result; more data (same empirical values) never a larger one."""
    estimator = resolve_estimator(spec, options)
    name = getattr(estimator, "name", type(estimator).__name__)
    grid = math.log2(len(ALPHAS))
    for scenario in SCENARIOS:
        evidence = simulate(scenario, 1, seed)[0].evidence
        by_bits = [{r.name: r.value for r in estimator.compute(evidence, Complexity(code_bits=b, extra_bits=grid), delta)}
                   for b in (1, 100, 10_000, 1_000_000)]
        for lower, higher in zip(by_bits, by_bits[1:]):
            for result, value in lower.items():
                assert higher[result] >= value - 1e-12, f"{name} / {scenario} / {result}: more bits lowered the bound"
        complexity = Complexity(code_bits=1000, extra_bits=grid)
        by_data = [{r.name: r.value for r in estimator.compute(_scaled(evidence, f), complexity, delta)}
                   for f in (1, 2, 8, 64)]
        for smaller, larger in zip(by_data, by_data[1:]):
            for result, value in smaller.items():
                assert larger[result] <= value + 1e-12, f"{name} / {scenario} / {result}: more data raised the bound"


def check_bound_results(spec, options: dict | None = None, seed: int = 0, delta: float = DELTA) -> None:
    """Terms add up, values lie above the empirical risk, every result has a target the contract knows."""
    estimator = resolve_estimator(spec, options)
    name = getattr(estimator, "name", type(estimator).__name__)
    for scenario in SCENARIOS + ADVERSARIAL_SCENARIOS:
        trial = next(iter_trials(scenario, 1, seed))
        for r in estimator.compute(trial.evidence, Complexity(code_bits=5000, extra_bits=1.0), delta):
            _truth(r, trial, name)
            total = r.empirical + r.complexity_term + r.confidence_term
            assert math.isclose(r.value, total, rel_tol=1e-9, abs_tol=1e-9), (
                f"{name} / {r.name}: value {r.value} != empirical + complexity + confidence = {total}")
            assert r.complexity_term >= 0 and r.confidence_term >= 0, f"{name} / {r.name}: negative term"
            assert r.vacuous == (r.value >= r.random_guess), f"{name} / {r.name}: vacuous flag wrong"


def check_bound_adversarial(spec, options: dict | None = None, trials: int = ADVERSARIAL_TRIALS, seed: int = 0,
                            scenarios: tuple[str, ...] | None = None, delta: float | None = None) -> list[Coverage]:
    """Monte-Carlo coverage where a valid bound is nearly tight (``sublora.core.testing.adversarial``).

    Default: ``ADVERSARIAL_SCENARIOS`` (about 3 s per estimator); add ``HEAVY_SCENARIOS`` to
    resolve 20 % cuts of subsample terms (tens of seconds). AssertionError if a result fails.
    """
    return check_bound_validity(spec, options, trials=trials, seed=seed, delta=delta,
                                scenarios=ADVERSARIAL_SCENARIOS if scenarios is None else scenarios)


def check_bound_contract(spec, options: dict | None = None, trials: int = 400,
                         adversarial_trials: int = ADVERSARIAL_TRIALS) -> list[Coverage]:
    """The whole contract: result structure, monotonicity, Monte-Carlo validity on the benign
    scenarios (``trials`` each), then on the adversarial ones (``adversarial_trials`` each; 0 skips them)."""
    check_bound_results(spec, options)
    check_bound_monotone(spec, options)
    report = check_bound_validity(spec, options, trials=trials)
    if adversarial_trials:
        report += check_bound_adversarial(spec, options, trials=adversarial_trials)
    return report


__all__ = [
    "ADVERSARIAL_SCENARIOS",
    "ADVERSARIAL_TRIALS",
    "DELTA",
    "HEAVY_SCENARIOS",
    "SCENARIOS",
    "Coverage",
    "Trial",
    "allowed_failures",
    "check_bound_adversarial",
    "check_bound_contract",
    "check_bound_monotone",
    "check_bound_results",
    "check_bound_validity",
    "iter_trials",
    "minimal_complexity",
    "resolve_estimator",
    "scenario_delta",
    "simulate",
    "simulate_documents",
    "simulate_tokens",
]
