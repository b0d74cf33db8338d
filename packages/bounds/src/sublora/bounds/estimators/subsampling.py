"""IID subsampling bound, document and (opt-in) sequence level (docs/bounds.md sections 6.1 and 7;
Lotfi et al. 2024a).

N i.i.d. training units; the empirical risk is the mean over n units drawn uniformly with
replacement from them; r = n / (n + N). Each unit's value lies in a range of width R
(Delta(alpha) for bits per token, 1 for top-k errors). With probability >= 1 - delta:

    R(h) <= UCB(sampled values, R, d_s) + R sqrt((div - ln(r delta)) / (2N))

with div = (C(h) + extra bits) ln 2, UCB the ``subsample_bound`` limit (Hoeffding:
mean + R sqrt(ln(1/d_s) / (2n)), the reference's form) and d_s = (1 - r) delta, divided by
|A| for the bits-per-token results: the best alpha of the grid A is picked after seeing the
sample, so each alpha's sample event gets its share (a union bound).

Units:
- documents (``document_bpd``, ``document_top{k}``): the document evidence; scenario: the
  training documents are i.i.d. draws.
- sequences (``sequence_bpd``, ``sequence_top{k}``; only with ``sequences: true``): the aligned
  blocks of the token evidence, N = their number. When every block was evaluated (no sampling)
  the sample term is dropped: R sqrt((div - ln delta) / (2N)). This treats consecutive blocks of
  one stream as i.i.d. draws, which sublora's data does not satisfy: the results carry the
  assumption and never compete for the headline.

``complexity_term`` = bound(div) - bound(div = 0), ``confidence_term`` = bound(div = 0) - empirical,
so value = empirical + complexity_term + confidence_term.
"""

from __future__ import annotations

import math

import numpy as np

from sublora.bounds.estimators._common import (
    check_count,
    check_delta,
    check_extremes,
    check_range,
    complexity_inputs,
    make_result,
    per_alpha,
    subsample_ucb,
    topk_errors,
)
from sublora.bounds.estimators._tokens import token_arrays
from sublora.bounds.smoothing import delta_range, loss_range, random_guess_bpd, random_guess_topk
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence

#: Written into every sequence-level result: what it relies on beyond the estimator's scenario.
SEQUENCE_ASSUMPTION = ("training blocks are i.i.d. draws from the data distribution (not true of consecutive "
                       "blocks of one stream: files in order, adjacent blocks share a boundary token)")


def subsampling_bracket(N: int, n: int, div_nats: float, delta: float) -> float:
    """The reference's bracket multiplying Delta: sqrt((div - ln(r delta))/(2N)) + sqrt(-ln((1-r) delta)/(2n))."""
    check_delta(delta)
    check_count(N, "N", "training units")
    check_count(n, "n", "sampled units")
    r = n / (n + N)
    return math.sqrt((div_nats - math.log(r * delta)) / (2.0 * N)) + math.sqrt(-math.log((1.0 - r) * delta) / (2.0 * n))


def subsampling_bound(train_risk, N: int, n: int, div_nats: float, Delta: float, delta: float):
    """The reference's form, R_hat_n + Delta * bracket (Hoeffding sample term, no alpha union); may be an array."""
    return train_risk + Delta * subsampling_bracket(N, n, div_nats, delta)


def occam_term(N: int, div_nats: float, R: float, delta: float) -> float:
    """R sqrt((div - ln delta) / (2N)): the population of N units, one hypothesis of prior e^-div."""
    check_delta(delta)
    check_count(N, "N", "training units")
    return R * math.sqrt((div_nats - math.log(delta)) / (2.0 * N))


class SubsamplingBound(BoundEstimator):
    """Document-level BPD (best alpha of the paid-for grid) and top-k error bounds; opt-in sequence level."""

    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        check_delta(delta)
        results = self._documents(evidence, complexity, delta) if evidence.documents is not None else []
        if evidence.tokens is not None and self.config.sequences:
            results += self._sequences(evidence, complexity, delta)
        return results

    def _bound(self, values: np.ndarray, N: int, sampled: bool, R: float, div: float, delta: float,
               share: int) -> float:
        """UCB at (1 - r) delta / share + Occam at r delta; all N evaluated: mean + Occam at delta."""
        if not sampled:
            return float(values.mean()) + occam_term(N, div, R, delta)
        n = values.size
        r = n / (n + N)
        return subsample_ucb(values, R, (1.0 - r) * delta / share, self.config.subsample_bound) + occam_term(
            N, div, R, r * delta)

    def _results(self, prefix: str, values_by_alpha: np.ndarray, topk: list[tuple[int, np.ndarray]], N: int,
                 sampled: bool, evidence: Evidence, complexity: Complexity, delta: float, common: dict,
                 assumptions: list[str]) -> list[BoundResult]:
        """The bits-per-token result (best alpha, delta / |A| per sample event) and one per top-k error."""
        V, A = int(evidence.vocab_size), len(evidence.alphas)
        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(values_by_alpha[a], *loss_range(alpha, V), what=f"{prefix} BPD at alpha={alpha}")
            Delta = delta_range(alpha, V)
            value = self._bound(values_by_alpha[a], N, sampled, Delta, complexity.nats, delta, A)
            candidates.append((value, a, Delta, float(values_by_alpha[a].mean())))
        value, a, Delta, empirical = min(candidates)
        inputs = {**common, "alpha": float(evidence.alphas[a]), "alpha_index": a,
                  "alphas": [float(x) for x in evidence.alphas], "Delta": Delta,
                  "delta_subsample": (1.0 - common["r"]) * delta / A if sampled else None}
        value0 = self._bound(values_by_alpha[a], N, sampled, Delta, 0.0, delta, A)
        results = [make_result(self.name, f"{prefix}_bpd", value, empirical, value0, random_guess_bpd(V),
                               "bits/token", inputs, target=f"{prefix}_bpd", assumptions=assumptions)]
        for k, errors in topk:
            empirical = float(errors.mean())
            results.append(make_result(
                self.name, f"{prefix}_top{k}", self._bound(errors, N, sampled, 1.0, complexity.nats, delta, 1),
                empirical, self._bound(errors, N, sampled, 1.0, 0.0, delta, 1), random_guess_topk(int(k), V),
                "error rate", {**common, "alpha": None, "alpha_index": None, "k": int(k), "Delta": 1.0,
                               "delta_subsample": (1.0 - common["r"]) * delta if sampled else None},
                target=f"{prefix}_top{k}", assumptions=assumptions))
        return results

    def _sequences(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        tokens, loss, _ = token_arrays(evidence)
        check_extremes(tokens.loss_extremes, evidence.alphas, int(evidence.vocab_size), "token")
        N, n = int(tokens.total_blocks), int(tokens.blocks)
        common = {"N": N, "n": n, "delta": float(delta), "sampled": bool(tokens.sampled),
                  "block_size": int(tokens.block_size), "r": n / (n + N) if tokens.sampled else None,
                  "subsample_bound": self.config.subsample_bound if tokens.sampled else None,
                  "vocab_size": int(evidence.vocab_size), **complexity_inputs(complexity)}
        return self._results("sequence", loss, topk_errors(tokens.topk_error, n, "tokens"), N, tokens.sampled,
                             evidence, complexity, delta, common, [SEQUENCE_ASSUMPTION])

    def _documents(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        docs = evidence.documents
        N, n = int(docs.N), int(docs.n)
        check_count(N, "N", "training documents")
        check_count(n, "n", "sampled documents")
        check_extremes(docs.loss_extremes, evidence.alphas, int(evidence.vocab_size), "document")
        common = {"N": N, "n": n, "delta": float(delta), "r": n / (n + N), "sampled": True,
                  "subsample_bound": self.config.subsample_bound, "vocab_size": int(evidence.vocab_size),
                  "tokens_scored": int(docs.tokens_scored), **complexity_inputs(complexity)}
        bpd = per_alpha(docs.bpd, evidence.alphas, n, "documents.bpd")
        return self._results("document", bpd, topk_errors(docs.topk_error, n, "documents"), N, True,
                             evidence, complexity, delta, common, [])
