"""Weakened copies of the estimators, made from outside (no source patched), to measure the power of
the bound contract's adversarial scenarios (docs/bounds.md section 11).

Each wraps a registered estimator and changes its inputs or its results the way a wrong
implementation would:

- ``margin``: every result's margin (value - empirical) cut by 20 %;
- ``complexity``: the complexity-dependent term (``complexity_term``) cut by 20 %;
- ``confidence``: the rest of the margin (``confidence_term``) cut by 20 %;
- ``bits``: the hypothesis's bits not charged, only the alpha grid's (the union over hypotheses dropped);
- ``alpha_union``: each alpha certified on its own and the smallest kept (delta / |A| dropped from the
  sample terms; the grid's bits stay);
- ``sample_twice``: every sampled unit counted twice (the sample term cut by 29 % with Hoeffding, more
  with empirical Bernstein);
- ``bernstein_range``: the empirical-Bernstein range term 7 R ln(2/d) / (3(m - 1)) of the mean's limit
  dropped (sampled token evidence with ``subsample_bound: bernstein``; reads R, d, m from the result's inputs).

``python tests/bounds/bound_weakenings.py [--heavy] [--trials T]`` prints the power table.
"""

from __future__ import annotations

import math
import sys
from typing import ClassVar

import numpy as np
from sublora.core.bound import BoundConfig, BoundEstimator, BoundResult, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.registry import registry
from sublora.core.testing import allowed_failures, iter_trials, minimal_complexity, scenario_delta
from sublora.core.testing.adversarial import ADVERSARIAL_SCENARIOS, HEAVY_SCENARIOS

KINDS = ("margin", "complexity", "confidence", "bits", "alpha_union", "sample_twice", "bernstein_range")
#: every built-in estimator with the options that change its formulas
SPECS: list[tuple[str, dict | None]] = [
    ("azuma", None), ("azuma", {"subsample_bound": "hoeffding"}),
    ("freedman", None), ("freedman", {"subsample_bound": "hoeffding"}),
    ("subsampling", None), ("subsampling", {"sequences": True}),
    ("pacbayes:kl", None), ("pacbayes:mcallester", None), ("pacbayes:catoni", None),
]


def label(spec: str, options: dict | None) -> str:
    return spec + ("" if not options else "{" + ", ".join(f"{k}: {v}" for k, v in options.items()) + "}")


class _Config(BoundConfig):
    implementation: ClassVar[str] = ""


class Weakened(BoundEstimator):
    """A registered estimator with one weakening (``KINDS``) applied from outside."""

    def __init__(self, spec: str, options: dict | None, kind: str):
        assert kind in KINDS, kind
        super().__init__(_Config())
        self.inner, self.kind = registry("bound").config(spec, options).build(), kind

    @property
    def name(self) -> str:
        return f"{self.inner.name}[{self.kind}]"

    def compute(self, evidence, complexity, delta):
        kind = self.kind
        if kind == "bits":
            return self.inner.compute(evidence, minimal_complexity(evidence.alphas), delta)
        if kind == "sample_twice":
            return self.inner.compute(sampled_twice(evidence), complexity, delta)
        if kind == "alpha_union":
            best: dict[str, BoundResult] = {}
            for a in range(len(evidence.alphas)):
                for r in self.inner.compute(one_alpha(evidence, a), complexity, delta):
                    if r.name not in best or r.value < best[r.name].value:
                        best[r.name] = r
            return list(best.values())
        return [self._cut(r) for r in self.inner.compute(evidence, complexity, delta)]

    def _cut(self, r: BoundResult) -> BoundResult:
        if self.kind == "margin":
            value = r.empirical + 0.8 * (r.value - r.empirical)
        elif self.kind == "complexity":
            value = r.value - 0.2 * r.complexity_term
        elif self.kind == "confidence":
            value = r.value - 0.2 * r.confidence_term
        else:  # bernstein_range
            value = r.value - bernstein_range_term(r)
        return BoundResult(**{**r.model_dump(), "value": value, "complexity_term": 0.0,
                              "confidence_term": value - r.empirical})


def bernstein_range_term(r: BoundResult) -> float:
    """7 R ln(2/d) / (3(m - 1)) of the mean's empirical-Bernstein limit in a token-level result; 0 otherwise."""
    x = r.inputs
    if not x.get("sampled") or x.get("subsample_bound") != "bernstein":
        return 0.0
    R = x.get("Delta_alpha", x.get("Delta"))  # freedman: Delta_alpha (Delta is Delta_F); azuma: Delta
    d = x.get("delta_mean", x.get("delta_subsample"))
    return 7.0 * R * math.log(2.0 / d) / (3.0 * (x["m"] - 1))


def one_alpha(evidence: Evidence, a: int) -> Evidence:
    """The evidence at alpha index ``a`` only."""
    docs = tokens = None
    if (d := evidence.documents) is not None:
        docs = DocumentEvidence(N=d.N, indices=d.indices, bpd=d.bpd[a:a + 1], topk_error=d.topk_error,
                                tokens_scored=d.tokens_scored)
    if (t := evidence.tokens) is not None:
        tokens = TokenEvidence(n=t.n, block_size=t.block_size, block_indices=t.block_indices, sampled=t.sampled,
                               loss=t.loss[a:a + 1], xi2=t.xi2[a:a + 1], topk_error=t.topk_error)
    return Evidence(vocab_size=evidence.vocab_size, alphas=(evidence.alphas[a],), documents=docs, tokens=tokens)


def sampled_twice(evidence: Evidence) -> Evidence:
    """Every sampled unit counted twice (evidence where every block was evaluated is left alone)."""
    docs, tokens = evidence.documents, evidence.tokens
    if docs is not None:
        docs = DocumentEvidence(N=docs.N, indices=np.tile(docs.indices, 2), bpd=np.tile(docs.bpd, 2),
                                topk_error={k: np.tile(e, 2) for k, e in docs.topk_error.items()},
                                tokens_scored=2 * docs.tokens_scored)
    if tokens is not None and tokens.sampled:
        tokens = TokenEvidence(n=tokens.n, block_size=tokens.block_size, block_indices=np.tile(tokens.block_indices, 2),
                               sampled=True, loss=np.tile(tokens.loss, 2), xi2=np.tile(tokens.xi2, 2),
                               topk_error={k: np.tile(e, 2) for k, e in tokens.topk_error.items()})
    return Evidence(vocab_size=evidence.vocab_size, alphas=evidence.alphas, documents=docs, tokens=tokens)


def failures(estimators: dict[str, BoundEstimator], scenario: str, trials: int, seed: int = 0) -> dict[str, int]:
    """Most failures of any one result, per estimator, on the same trials; -1 if it gave no result."""
    from sublora.core.testing.bound_contract import _truth

    delta = scenario_delta(scenario)
    counts: dict[str, dict[str, int]] = {key: {} for key in estimators}
    for trial in iter_trials(scenario, trials, seed):
        complexity = trial.complexity or minimal_complexity(trial.evidence.alphas)
        for key, estimator in estimators.items():
            for r in estimator.compute(trial.evidence, complexity, delta):
                truth = _truth(r, trial, key)
                if truth is not None:
                    counts[key][r.name] = counts[key].get(r.name, 0) + int(truth > r.value)
    return {key: max(c.values(), default=-1) for key, c in counts.items()}


def power_table(scenarios=ADVERSARIAL_SCENARIOS, trials: int = 100, specs=SPECS, kinds=KINDS, out=print) -> list:
    """Rows (scenario, estimator, allowed, correct's failures, {kind: failures}) for every estimator with a result."""
    rows = []
    for scenario in scenarios:
        allowed = allowed_failures(trials, scenario_delta(scenario))
        for spec, options in specs:
            estimators = {"correct": registry("bound").config(spec, options).build(),
                          **{k: Weakened(spec, options, k) for k in kinds}}
            counts = failures(estimators, scenario, trials)
            if counts["correct"] < 0:
                continue
            row = (scenario, label(spec, options), allowed, counts["correct"], {k: counts[k] for k in kinds})
            rows.append(row)
            out(format_row(row))
    return rows


def format_row(row) -> str:
    scenario, name, allowed, correct, weak = row
    cells = [f"**{v}**" if v > allowed else str(v) for v in weak.values()]
    return f"| {scenario} | {name} | {allowed:.1f} | {correct} | " + " | ".join(cells) + " |"


if __name__ == "__main__":
    heavy = "--heavy" in sys.argv
    trials = int(sys.argv[sys.argv.index("--trials") + 1]) if "--trials" in sys.argv else 100
    print("| scenario | estimator | allowed | correct | " + " | ".join(KINDS) + " |")
    print("| --- " * (4 + len(KINDS)) + "|")
    power_table(HEAVY_SCENARIOS if heavy else ADVERSARIAL_SCENARIOS, trials)
