"""A document-level Occam bound (docs/bounds.md sections 3, 4 and 6), built from sublora.bounds.estimator_kit.

Scenario: the N training documents are i.i.d. draws; the evidence holds n of them drawn
uniformly with replacement. For a per-document value Z in a range of width R (bits per token
at smoothing alpha: R = Delta(alpha); a top-k error rate: R = 1), with probability >= 1 - delta:

    E[Z] <= UCB(sampled Z, R, f delta / s) + R sqrt((div + ln(1 / ((1 - f) delta))) / (2N))

f = ``sample_delta_fraction``; s = |A| for bits per token (the best alpha is picked after seeing
the sample, so each alpha's sample event gets its share) and 1 for top-k errors; div = C(h) ln 2
(the complexity, whose extra bits already pay for the alpha grid).
"""

from __future__ import annotations

import math

from sublora.bounds.estimator_kit import (
    check_count,
    check_delta,
    check_extremes,
    check_range,
    complexity_inputs,
    delta_range,
    loss_range,
    make_result,
    per_alpha,
    random_guess_bpd,
    random_guess_topk,
    subsample_ucb,
    topk_errors,
)
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence


class OccamBound(BoundEstimator):
    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        docs = evidence.documents
        if docs is None:  # token-only evidence: nothing this estimator can certify
            return []
        check_delta(delta)
        N, n, V, A = int(docs.N), int(docs.n), int(evidence.vocab_size), len(evidence.alphas)
        check_count(N, "N", "training documents")
        check_count(n, "n", "sampled documents")
        check_extremes(docs.loss_extremes, evidence.alphas, V, "document")
        f = self.config.sample_delta_fraction

        def bound(values, R: float, share: int, div: float) -> float:
            sample = subsample_ucb(values, R, f * delta / share, self.config.subsample_bound)
            return sample + R * math.sqrt((div + math.log(1.0 / ((1.0 - f) * delta))) / (2.0 * N))

        common = {"N": N, "n": n, "delta": delta, "sample_delta_fraction": f, "vocab_size": V,
                  "subsample_bound": self.config.subsample_bound, **complexity_inputs(complexity)}
        bpd = per_alpha(docs.bpd, evidence.alphas, n, "documents.bpd")
        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(bpd[a], *loss_range(alpha, V), what=f"document BPD at alpha={alpha}")
            candidates.append((bound(bpd[a], delta_range(alpha, V), A, complexity.nats), a))
        value, a = min(candidates)
        R = delta_range(evidence.alphas[a], V)
        results = [make_result(self.name, "document_occam_bpd", value, float(bpd[a].mean()), bound(bpd[a], R, A, 0.0),
                               random_guess_bpd(V), "bits/token", {**common, "alpha": float(evidence.alphas[a]),
                               "Delta": R}, target="document_bpd")]
        for k, errors in topk_errors(docs.topk_error, n, "documents"):
            results.append(make_result(
                self.name, f"document_occam_top{k}", bound(errors, 1.0, 1, complexity.nats), float(errors.mean()),
                bound(errors, 1.0, 1, 0.0), random_guess_topk(k, V), "error rate", {**common, "alpha": None, "k": k},
                target=f"document_top{k}"))
        return results
