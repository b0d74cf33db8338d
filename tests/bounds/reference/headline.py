"""Sections 8-9 of docs/bounds.md: the attempts ledger's delta and the headline rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from reference import ranges
from reference.common import Result
from reference.estimators import DocumentData, EvidenceData, compute


def attempts_delta(bound_delta: float, j: int) -> float:
    """Section 8: the j-th distinct settings in the ledger compute every bound at bound.delta / (j (j + 1))."""
    return bound_delta / (j * (j + 1))


def floor_evidence(ev: EvidenceData) -> EvidenceData:
    """Section 9: the real evidence's shapes and counts, every loss at lo(a), every xi^2 and top-k error at 0."""
    lows = np.array([ranges.lo(a, ev.V) for a in ev.alphas])[:, None]

    def floor_topk(topk):
        return {k: np.zeros_like(np.asarray(e, dtype=np.float64)) for k, e in topk.items()}

    tokens = documents = None
    if ev.tokens is not None:
        t = ev.tokens
        tokens = replace(t, loss=np.broadcast_to(lows, t.loss.shape).copy(), xi2=np.zeros_like(t.xi2, dtype=np.float64),
                         extremes=None if t.extremes is None else np.repeat(lows, 2, axis=1), topk=floor_topk(t.topk))
    if ev.documents is not None:
        d = ev.documents
        documents = DocumentData(N=d.N, bpd=np.broadcast_to(lows, d.bpd.shape).copy(),
                                 extremes=None if d.extremes is None else np.repeat(lows, 2, axis=1),
                                 topk=floor_topk(d.topk))
    return EvidenceData(V=ev.V, alphas=ev.alphas, tokens=tokens, documents=documents)


def _for_target(spec: str, options: dict | None, ev: EvidenceData, C: float, delta: float,
                target: str) -> Result | None:
    found = [r for r in compute(spec, options, ev, C, delta) if r.target == target]
    return found[0] if found else None


def headline(target: str, estimators: list[str], options: dict[str, dict], ev: EvidenceData, C: float,
             delta: float) -> dict | None:
    """Section 9. ``delta`` is already bound.delta / k (section 8); ``options`` by family.

    Candidates: the configured estimators' results for ``target``, except those resting on an
    assumption (section 7: they never compete). One whose value on the floor evidence at delta is
    >= its random guess is dropped; the K others are recomputed at delta / K and the smallest is
    the headline (None when K = 0).
    """
    floor = floor_evidence(ev)
    kept, dropped = [], []
    for spec in estimators:
        opts = options.get(spec.split(":")[0])
        at_floor = _for_target(spec, opts, floor, C, delta, target)
        if at_floor is None or at_floor.assumptions:
            continue
        (dropped if at_floor.value >= at_floor.random_guess else kept).append(spec)
    if not kept:
        return None
    K = len(kept)
    results = [(spec, _for_target(spec, options.get(spec.split(":")[0]), ev, C, delta / K, target)) for spec in kept]
    spec, best = min(results, key=lambda sr: sr[1].value)
    return {"estimator": spec, "value": best.value, "empirical": best.empirical, "alpha_index": best.alpha_index,
            "K": K, "delta_each": delta / K, "kept": kept, "dropped": dropped, "slack": best.slack}
