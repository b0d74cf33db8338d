"""Check the evidence against the model it claims to score: its draws, and its scores re-computed.

    draws_match(evidence, config, data)        the sampled blocks and documents are the seeded draws
                                               certify makes (nothing cherry-picked), of the right shapes
    choose(evidence, everything, seed)         which sampled blocks and documents to re-score: a random
                                               subset drawn at verify time (a forger cannot know which),
                                               or all of them
    rescore(model, data, config, evidence, choice)
                                               scores them again with the decoded model and compares

Re-scored values must match the evidence within ``ATOL`` bits (+ ``RTOL`` relative): float32
forward passes batched differently, or run on another device, differ by ~1e-6. The top-k error rates
use the same tolerance, below one token's share of any block or document we score. Verify re-scores on
the device it is given (``sublora verify --device``); ``tolerance_statement`` says what was compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sublora.bounds.evaluate import document_draw, token_draw
from sublora.core.bound import Evidence
from sublora.core.config import RunConfig
from sublora.core.errors import VerificationError

QUICK_BLOCKS = 16
QUICK_DOCUMENTS = 4
ATOL = 1e-4
RTOL = 1e-5


def _shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if np.shape(array) != shape:
        raise VerificationError(f"evidence.npz: {name} has shape {np.shape(array)}, expected {shape}.")


def _in_range(name: str, array: np.ndarray, high: np.ndarray | float) -> None:
    """Every value finite and in [0, high] (what a smoothed loss, xi^2 or an error rate can be)."""
    a = np.asarray(array, dtype=float)
    if not np.isfinite(a).all() or (a < -1e-9).any() or (a > np.asarray(high) + 1e-9).any():
        raise VerificationError(f"evidence.npz: {name} holds values outside [0, {np.max(high):.4g}] or not finite.")


def draws_match(evidence: Evidence, config: RunConfig, data, vocab: int) -> str:
    """Refuse evidence whose sample is not the one the settings draw, or whose arrays are misshapen.

    ``vocab``: V of the predictor the settings define (the evidence must have been scored with it).
    """
    b = config.bound
    if evidence.tokens is None or evidence.documents is None:
        raise VerificationError("evidence.npz lacks the token-level or the document-level evidence.")
    if evidence.vocab_size != vocab:
        raise VerificationError(f"evidence.npz was scored with V={evidence.vocab_size}; the model, tokenizer and "
                                f"bound.vocab={b.vocab!r} give V={vocab}.")
    if tuple(evidence.alphas) != tuple(b.alphas):
        raise VerificationError(f"evidence.npz was scored at alphas {list(evidence.alphas)}, the settings (and the "
                                f"bits charged for the grid) say {list(b.alphas)}.")
    A, topk = len(b.alphas), sorted(int(k) for k in b.topk)

    t = evidence.tokens
    block = config.model.block_size
    total = (len(data.train) - 1) // block
    if t.block_size != block or t.n != total * block:
        raise VerificationError(f"evidence.npz covers n={t.n} tokens in blocks of {t.block_size}; the training stream "
                                f"holds n={total * block} in {total} blocks of {block}.")
    expected = token_draw(total, b.token_blocks, b.seed)
    if t.sampled != bool(b.token_blocks is not None and b.token_blocks < total) or not np.array_equal(
            np.asarray(t.block_indices), expected):
        raise VerificationError(f"evidence.npz's token blocks are not the {len(expected)} blocks that bound.seed="
                                f"{b.seed} draws from {total}: a sample chosen after the fact certifies nothing.")
    _shape("token_loss", t.loss, (A, t.blocks))
    _shape("token_xi2", t.xi2, (A, t.blocks))
    if sorted(t.topk_error) != topk:
        raise VerificationError(f"evidence.npz has token top-k errors for k in {sorted(t.topk_error)}, "
                                f"the settings ask for {topk}.")
    for k, e in t.topk_error.items():
        _shape(f"token top-{k} error", e, (t.blocks,))
        _in_range(f"token top-{k} error", e, 1.0)
    most = np.log2(evidence.vocab_size / np.asarray(b.alphas))[:, None]  # (A, 1): the largest smoothed loss
    _in_range("token_loss", t.loss, most)
    _in_range("token_xi2", t.xi2, 1.0)

    d = evidence.documents
    starts, ends = data.doc_bounds("train")
    expected = document_draw(len(starts), b.doc_samples, b.seed + 1)
    if d.N != len(starts) or not np.array_equal(np.asarray(d.indices), expected):
        raise VerificationError(f"evidence.npz's documents are not the {b.doc_samples} that bound.seed + 1 = "
                                f"{b.seed + 1} draws from the {len(starts)} training documents.")
    tokens_scored = int((ends - starts)[expected].sum())
    if d.tokens_scored != tokens_scored:
        raise VerificationError(f"evidence.npz says {d.tokens_scored} document tokens were scored; the sampled "
                                f"documents hold {tokens_scored}.")
    _shape("doc_bpd", d.bpd, (A, d.n))
    if sorted(d.topk_error) != topk:
        raise VerificationError(f"evidence.npz has document top-k errors for k in {sorted(d.topk_error)}, "
                                f"the settings ask for {topk}.")
    _in_range("doc_bpd", d.bpd, most)
    for k, e in d.topk_error.items():
        _shape(f"document top-{k} error", e, (d.n,))
        _in_range(f"document top-{k} error", e, 1.0)
    for what, extremes in (("token", t.loss_extremes), ("document", d.loss_extremes)):
        if extremes is None:  # sublora's scorer always records them; every estimator checks them (bounds.md 2)
            raise VerificationError(f"evidence.npz has no {what}_loss_extremes (the smallest and largest per-token "
                                    "loss at each alpha), which sublora's scorer always records.",
                                    hint="The evidence was not written by sublora's scorer; certify again.")
        _shape(f"{what}_loss_extremes", extremes, (A, 2))
    return (f"evidence: the {t.blocks} token blocks and {d.n} documents are the seeded draws of the settings, "
            f"at alphas {list(b.alphas)}")


@dataclass
class Choice:
    """Positions in the evidence's block list, and distinct documents (ids), to score again."""

    blocks: np.ndarray
    documents: np.ndarray
    everything: bool
    seed: int | None


def choose(evidence: Evidence, everything: bool, seed: int,
           blocks: int = QUICK_BLOCKS, documents: int = QUICK_DOCUMENTS) -> Choice:
    """Every sampled block and document, or a random subset drawn with ``seed`` (fresh at verify time)."""
    t, d = evidence.tokens, evidence.documents
    distinct = np.unique(np.asarray(d.indices))
    if everything:
        return Choice(np.arange(t.blocks), distinct, True, None)
    rng = np.random.default_rng(seed)
    return Choice(np.sort(rng.choice(t.blocks, size=min(blocks, t.blocks), replace=False)),
                  np.sort(rng.choice(distinct, size=min(documents, len(distinct)), replace=False)), False, seed)


def _bad_columns(again: np.ndarray, claimed: np.ndarray) -> np.ndarray:
    """Which units (last axis) differ beyond the tolerance, at any alpha."""
    ok = np.isclose(again, claimed, atol=ATOL, rtol=RTOL)
    return np.flatnonzero(~ok.reshape(-1, ok.shape[-1]).all(0))


def _check_extremes(level: str, claimed: np.ndarray | None, seen: list[np.ndarray], everything: bool) -> None:
    """The evidence's (min, max) per-token loss, per alpha: it must hold every re-scored token, and equal
    what re-scoring everything finds. (A bound may rely on this range: a forged one must not pass.)"""
    if claimed is None or not seen:
        return
    lo = np.min([s[:, 0] for s in seen], axis=0)
    hi = np.max([s[:, 1] for s in seen], axis=0)
    claimed = np.asarray(claimed, dtype=float)
    outside = (lo < claimed[:, 0] - ATOL).any() or (hi > claimed[:, 1] + ATOL).any()
    if outside or (everything and (len(_bad_columns(lo, claimed[:, 0])) or len(_bad_columns(hi, claimed[:, 1])))):
        raise VerificationError(f"Re-scoring the decoded model finds {level} losses in [{lo.min():.4f}, {hi.max():.4f}] "
                                f"bits; the evidence's per-token loss range does not match: the evidence is not this "
                                "model's.")


def rescore(model, data, config: RunConfig, evidence: Evidence, choice: Choice) -> None:
    """Score the chosen blocks and documents with ``model``; raise VerificationError on any difference."""
    from sublora.bounds.evaluate import score_documents, score_token_blocks
    from sublora.bounds.inference import predictor
    from sublora.bounds.sharded import device

    predict = predictor(model, device(), config.bound.dtype)  # the certified predictor, on verify's device
    b, t, d, V = config.bound, evidence.tokens, evidence.documents, evidence.vocab_size
    topk = tuple(sorted(t.topk_error))
    if len(choice.blocks):
        again = score_token_blocks(model, data.train, t.block_size, evidence.alphas, None, seed=0,
                                   batch_size=b.batch_size, _indices=np.asarray(t.block_indices)[choice.blocks],
                                   topk=topk, vocab=V, predict=predict)
        fields = [("loss", again.loss, t.loss[:, choice.blocks]), ("xi2", again.xi2, t.xi2[:, choice.blocks])]
        fields += [(f"top-{k} error", again.topk_error[k], t.topk_error[k][choice.blocks]) for k in topk]
        for what, new, old in fields:
            bad = choice.blocks[_bad_columns(new, old)]
            if len(bad):
                raise VerificationError(
                    f"Re-scoring the decoded model does not reproduce the certified token {what} of evidence "
                    f"block(s) {bad[:5].tolist()} (training blocks {np.asarray(t.block_indices)[bad[:5]].tolist()}): "
                    "the evidence is not this model's.")
        _check_extremes("token-level", getattr(t, "loss_extremes", None),
                        [again.loss_extremes] if getattr(again, "loss_extremes", None) is not None else [],
                        choice.everything)

    starts, ends = data.doc_bounds("train")
    stride = b.doc_stride or config.model.block_size
    indices, ks = np.asarray(d.indices), tuple(sorted(d.topk_error))
    seen = []
    if len(choice.documents):  # the chosen documents in one batched pass, in choice order
        again = score_documents(model, data.train, starts, ends, data.eot_id, config.model.block_size, stride,
                                evidence.alphas, ks, len(choice.documents), seed=0, batch_size=b.batch_size, vocab=V,
                                _indices=np.asarray(choice.documents), predict=predict)
        for j, doc in enumerate(choice.documents):
            for i in np.flatnonzero(indices == doc):  # every draw of the document carries the same scores
                claimed = [d.bpd[:, i]] + [d.topk_error[k][i:i + 1] for k in ks]
                new = [again.bpd[:, j]] + [again.topk_error[k][j:j + 1] for k in ks]
                if any(len(_bad_columns(x, y)) for x, y in zip(new, claimed)):
                    raise VerificationError(f"Re-scoring the decoded model does not reproduce the certified scores of "
                                            f"training document {int(doc)} (sample {int(i)}): the evidence is not "
                                            "this model's.")
        if again.loss_extremes is not None:
            seen.append(again.loss_extremes)
    _check_extremes("document-level", getattr(d, "loss_extremes", None), seen, choice.everything)


def tolerance_statement(scoring: dict | None, device: str) -> str:
    """What the re-scored values were compared with, and within what: one line for verify's report."""
    certified = (f"{scoring.get('device')} ({scoring.get('dtype')})" if isinstance(scoring, dict)
                 else "an unrecorded device (certificate from before scoring was recorded)")
    dtype = scoring.get("dtype", "float32") if isinstance(scoring, dict) else "float32"
    same = isinstance(scoring, dict) and scoring.get("device") == device
    if dtype != "float32":
        why = (f"same device, {dtype}: the scores do not depend on batch composition or threads on this "
               "machine's CPU (tests find none)" if same else
               f"another device: {dtype} rounding differs between devices and kernels by more than this "
               "tolerance, so verify a bfloat16 certificate on the kind of machine that made it")
    else:
        why = ("same device and dtype: only float32 rounding of differently composed batches can differ, "
               "~1e-6 bits; on this machine's CPU the tests find none" if same else
               "another device (or dtype) rounds float32 differently, ~1e-6 bits")
    return (f"re-scored on {device} ({dtype}), certified on {certified}: agreement required within {ATOL:g} bits "
            f"+ {RTOL:g} relative per block and document ({why})")
