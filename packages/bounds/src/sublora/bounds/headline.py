"""The headline: one named quantity, the smallest of its candidate bounds, paid for being picked.

docs/bounds.md section 9. Candidates are the configured estimators' results for
``bound.headline_target``. Before the evidence is looked at, a candidate that is vacuous by
construction is dropped: its value on the *floor evidence* (the real evidence's shapes and
counts with every loss at its range minimum, every xi^2 and top-k error at 0) is already at or
above its random guess, so no data could make it useful. Results that rest on an assumption
(``assumptions``) never compete. The K remaining are recomputed at delta / K and the smallest
is the headline: valid with probability >= 1 - delta by a union bound over the K.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sublora.bounds.smoothing import loss_range
from sublora.core.bound import BoundEstimator, Complexity, Evidence


def floor_evidence(evidence: Evidence) -> Evidence:
    """The evidence's shapes and counts with the best values any data could give: no value of it is read."""
    lows = np.array([loss_range(a, evidence.vocab_size)[0] for a in evidence.alphas])  # (A,)
    tokens = documents = None
    if evidence.tokens is not None:
        t = evidence.tokens
        tokens = dataclasses.replace(
            t, loss=np.repeat(lows[:, None], t.blocks, axis=1), xi2=np.zeros((len(lows), t.blocks)),
            topk_error={k: np.zeros(t.blocks) for k in t.topk_error}, loss_extremes=np.stack([lows, lows], axis=1))
    if evidence.documents is not None:
        d = evidence.documents
        documents = dataclasses.replace(
            d, bpd=np.repeat(lows[:, None], d.n, axis=1), topk_error={k: np.zeros(d.n) for k in d.topk_error},
            loss_extremes=np.stack([lows, lows], axis=1))
    return Evidence(vocab_size=evidence.vocab_size, alphas=evidence.alphas, documents=documents, tokens=tokens)


def headline(estimators: list[BoundEstimator], evidence: Evidence, complexity: Complexity, delta: float,
             target: str) -> dict[str, Any]:
    """The smallest ``target`` bound, valid at 1 - delta for having been picked; {} fields when none competes."""
    floor = floor_evidence(evidence)
    competing, dropped, excluded = [], [], []
    for estimator in estimators:
        for r in estimator.compute(floor, complexity, delta):
            if r.target != target:
                continue
            if r.assumptions:
                excluded.append(r.name)
            elif r.vacuous:
                dropped.append(r.name)
            else:
                competing.append((estimator, r.name))
    rule = {"target": target, "candidate_names": [name for _, name in competing],
            "dropped_vacuous_by_construction": dropped, "excluded_for_assumptions": excluded, "delta": delta}
    if not competing:
        return {**rule, "candidates": 0, "name": None, "value": None,
                "note": f"no {target} bound can be non-vacuous at these sizes and bits: no headline"}
    K = len(competing)
    results = [r for estimator, name in competing for r in estimator.compute(evidence, complexity, delta / K)
               if r.name == name]
    best = min(results, key=lambda r: r.value)
    return {**rule, "candidates": K, "delta_each": delta / K, "name": best.name, "estimator": best.estimator,
            "value": best.value, "empirical": best.empirical, "random_guess": best.random_guess,
            "vacuous": best.vacuous, "alpha": best.inputs.get("alpha"), "units": best.units,
            "note": f"smallest of {K} {target} bounds, each recomputed at delta / {K}"}
