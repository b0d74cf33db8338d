"""IID subsampling bound, document and sequence level (bounds.md section 3; Lotfi et al. 2024a).

N i.i.d. training units; the empirical risk is the mean over n units drawn
uniformly with replacement from them; r = n / (n + N). With probability >= 1 - delta:

    R(h) <= R_hat_n + Delta * [ sqrt((div - ln(r delta)) / (2N)) + sqrt(-ln((1 - r) delta) / (2n)) ]

with div = (C(h) + extra bits) ln 2. Units:

- documents (``document_bpd``, ``document_top{k}``): the document evidence;
- sequences (``sequence_bpd``, ``sequence_top{k}``): the non-overlapping training sequences of block_size tokens
  of the token evidence, N = their number, each unit's loss its mean smoothed loss. When every
  sequence was evaluated (n = N, no sampling) the second term is dropped and the first is
  the plain Occam bound Delta sqrt((div - ln delta) / (2N)). This treats the sequences as
  i.i.d. draws from the data distribution (the reference's sequence-level assumption), which
  consecutive pieces of one text only approximate; the token-level martingale bounds need no
  such assumption.

Terms of each result:
``complexity_term`` = bound(div) - bound(div = 0), ``confidence_term`` =
bound(div = 0) - empirical, so value = empirical + complexity_term + confidence_term.
"""

from __future__ import annotations

import math

from sublora.bounds.estimators._common import (
    check_count,
    check_delta,
    check_range,
    complexity_inputs,
    make_result,
    per_alpha,
    topk_errors,
)
from sublora.bounds.estimators._tokens import token_arrays
from sublora.bounds.smoothing import delta_range, loss_range, random_guess_bpd, random_guess_topk
from sublora.core.bound import BoundEstimator, BoundResult, Complexity, Evidence


def subsampling_bracket(N: int, n: int, div_nats: float, delta: float) -> float:
    """The bracket multiplying Delta: sqrt((div - ln(r delta))/(2N)) + sqrt(-ln((1-r) delta)/(2n))."""
    check_delta(delta)
    check_count(N, "N", "training units")
    check_count(n, "n", "sampled units")
    r = n / (n + N)
    return math.sqrt((div_nats - math.log(r * delta)) / (2.0 * N)) + math.sqrt(-math.log((1.0 - r) * delta) / (2.0 * n))


def subsampling_bound(train_risk, N: int, n: int, div_nats: float, Delta: float, delta: float):
    """R_hat_n + Delta * bracket; ``train_risk`` may be a float or a numpy array."""
    return train_risk + Delta * subsampling_bracket(N, n, div_nats, delta)


class SubsamplingBound(BoundEstimator):
    """Document-level BPD (best alpha of the paid-for grid) and top-k error bounds; sequence-level BPD."""

    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        check_delta(delta)
        results = self._documents(evidence, complexity, delta) if evidence.documents is not None else []
        if evidence.tokens is not None:
            results += self._sequences(evidence, complexity, delta)
        return results

    def _sequences(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        tokens, loss, _ = token_arrays(evidence)
        N, n, V = int(tokens.total_blocks), int(tokens.blocks), int(evidence.vocab_size)

        def bound(empirical: float, Delta: float, div: float) -> float:
            if tokens.sampled:
                return subsampling_bound(empirical, N, n, div, Delta, delta)
            return empirical + Delta * math.sqrt((div - math.log(delta)) / (2.0 * N))

        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(loss[a], *loss_range(alpha, V), what=f"sequence losses at alpha={alpha}")
            Delta = delta_range(alpha, V)
            empirical = float(loss[a].mean())
            candidates.append((bound(empirical, Delta, complexity.nats), a, Delta, empirical))
        value, a, Delta, empirical = min(candidates)
        inputs = {"N": N, "n": n, "delta": float(delta), "sampled": bool(tokens.sampled),
                  "block_size": int(tokens.block_size), "r": n / (n + N) if tokens.sampled else None,
                  "alpha": float(evidence.alphas[a]), "alpha_index": a, "alphas": [float(x) for x in evidence.alphas],
                  "Delta": Delta, "vocab_size": V, **complexity_inputs(complexity)}
        results = [make_result(self.name, "sequence_bpd", value, empirical, bound(empirical, Delta, 0.0),
                               random_guess_bpd(V), "bits/token", inputs, target="sequence_bpd")]
        for k, errors in topk_errors(tokens.topk_error, n, "tokens"):
            empirical = float(errors.mean())
            results.append(make_result(
                self.name, f"sequence_top{k}", bound(empirical, 1.0, complexity.nats), empirical,
                bound(empirical, 1.0, 0.0), random_guess_topk(int(k), V), "error rate",
                {**inputs, "alpha": None, "alpha_index": None, "k": int(k), "Delta": 1.0}, target=f"sequence_top{k}"))
        return results

    def _documents(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        docs = evidence.documents
        N, n, V = int(docs.N), int(docs.n), int(evidence.vocab_size)
        check_count(N, "N", "training documents")
        check_count(n, "n", "sampled documents")
        div = complexity.nats
        common = {
            "N": N, "n": n, "delta": float(delta), "r": n / (n + N), "vocab_size": V,
            "tokens_scored": int(docs.tokens_scored), **complexity_inputs(complexity),
        }

        bpd = per_alpha(docs.bpd, evidence.alphas, n, "documents.bpd")
        candidates = []
        for a, alpha in enumerate(evidence.alphas):
            check_range(bpd[a], *loss_range(alpha, V), what=f"document BPD at alpha={alpha}")
            Delta = delta_range(alpha, V)
            empirical = float(bpd[a].mean())
            candidates.append((subsampling_bound(empirical, N, n, div, Delta, delta), a, Delta, empirical))
        value, a, Delta, empirical = min(candidates)
        inputs = {**common, "alpha": float(evidence.alphas[a]), "alpha_index": a,
                  "alphas": [float(x) for x in evidence.alphas], "Delta": Delta}
        results = [make_result(
            self.name, "document_bpd", value, empirical, subsampling_bound(empirical, N, n, 0.0, Delta, delta),
            random_guess_bpd(V), "bits/token", inputs, target="document_bpd",
        )]

        for k, errors in topk_errors(docs.topk_error, n, "documents"):
            empirical = float(errors.mean())
            results.append(make_result(
                self.name, f"document_top{k}", subsampling_bound(empirical, N, n, div, 1.0, delta), empirical,
                subsampling_bound(empirical, N, n, 0.0, 1.0, delta), random_guess_topk(int(k), V), "error rate",
                {**common, "alpha": None, "k": int(k), "Delta": 1.0}, target=f"document_top{k}",
            ))
        return results
