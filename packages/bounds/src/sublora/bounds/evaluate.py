"""Score the (quantized) model for the bounds: batched, in eval mode, under inference_mode.

Two predictors, both fixed before seeing the data:
- token level: the training stream is cut into aligned blocks of ``block_size``
  targets; token k is predicted from the tokens since the start of its block.
  Scoring a block therefore scores each of its tokens exactly once.
- document level: a document is predicted from an end-of-text token followed
  by its own tokens; long documents are scored with a sliding window of
  ``block_size`` and stride ``stride`` that never scores a token twice.
All losses are of the smoothed predictor p_h = (1 - alpha) p + alpha / V, in bits, with V
from ``predictor_vocab`` (docs/bounds.md section 2): the model's output size, or the
tokenizer's vocabulary when the model's distribution is restricted to the ids it can emit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from sublora.bounds.evidence import Scores, score_logits, smoothed_loss, target_rank
from sublora.bounds.inference import predictor
from sublora.core.bound import DocumentEvidence, TokenEvidence
from sublora.core.errors import BoundError
from sublora.core.memory import release_freed

_MAX_LOGIT_ELEMENTS = 8_000_000  # batch * block * vocab per forward chunk


def _target_logp(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) without a full log_softmax: documents need no other entry of p.

    logits (M, V), targets (M,) -> (M,)
    """
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def model_outputs(model) -> int:
    """Size of the model's output layer: the ids its distribution ranges over."""
    return int(model.net.get_output_embeddings().out_features)


def predictor_vocab(model, tokenizer_vocab: int, rule: str = "model") -> int:
    """V of the smoothed predictor, decided before any data is seen (docs/bounds.md section 2).

    ``model``: all of the model's outputs (ids the tokenizer never emits keep their mass: valid, looser).
    ``tokenizer``: the model's distribution renormalised over the tokenizer's ids, V = its vocabulary.
    """
    outputs = model_outputs(model)
    if outputs < tokenizer_vocab:
        raise BoundError(f"The model has {outputs} outputs but the tokenizer emits {tokenizer_vocab} ids: "
                         "some tokens would have no probability.", hint="Use a model whose vocabulary covers the tokenizer's.")
    if rule == "model":
        return outputs
    if rule == "tokenizer":
        return int(tokenizer_vocab)
    raise BoundError(f"Unknown vocabulary rule {rule!r}; use 'model' or 'tokenizer'.")


def _logits(predict: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, vocab: int) -> torch.Tensor:
    """The predictor's logits over its V ids: (B, T) -> (B, T, V), float32. Slicing the first V logits
    before any softmax renormalises the model's distribution over them."""
    logits = predict(inputs).float()
    return logits if logits.size(-1) == vocab else logits[..., :vocab]


class Shard(Protocol):
    """This process's share of a scoring pass split over ``world`` processes (``sublora.bounds.sharded``).

    Work is cut into batches whose composition depends only on the settings, never on ``world``; process
    ``rank`` scores batches rank, rank + world, ...; ``gather`` collects every process's {batch: result}
    on rank 0 (None elsewhere), where they are joined in batch order: the same numbers for any world size.
    """

    rank: int
    world: int

    def gather(self, parts: dict[int, Any]) -> dict[int, Any] | None: ...


def _mine(batches: int, shard: Shard | None) -> range:
    return range(batches) if shard is None else range(shard.rank, batches, shard.world)


def _all_parts(parts: dict[int, Any], shard: Shard | None) -> dict[int, Any] | None:
    return parts if shard is None else shard.gather(parts)


class _Extremes:
    """Running (min, max) of the per-token smoothed losses, per alpha: (A, 2)."""

    def __init__(self, alphas: int):
        self.value = np.stack([np.full(alphas, np.inf), np.full(alphas, -np.inf)], axis=1)

    def update(self, x: torch.Tensor) -> None:  # x: (A, M)
        if x.numel():
            self.value[:, 0] = np.minimum(self.value[:, 0], x.amin(dim=1).double().numpy())
            self.value[:, 1] = np.maximum(self.value[:, 1], x.amax(dim=1).double().numpy())


def token_draw(total_blocks: int, max_blocks: int | None, seed: int) -> np.ndarray:
    """The blocks the token-level evidence scores: all once, or ``max_blocks`` uniform draws with replacement."""
    if max_blocks is not None and max_blocks < total_blocks:
        return np.random.default_rng(seed).integers(0, total_blocks, size=max_blocks)
    return np.arange(total_blocks)


def document_draw(n_documents: int, samples: int, seed: int) -> np.ndarray:
    """The documents the document-level evidence scores: ``samples`` uniform draws with replacement."""
    return np.random.default_rng(seed).integers(0, n_documents, size=samples)


def batch_rows(block_size: int, vocab: int, batch_size: int) -> int:
    """Blocks (rows of ``block_size``) per forward pass: ``bound.batch_size``, fewer if the logits would
    exceed the memory limit. Depends on the settings only, so batches are the same in every process."""
    return max(1, min(batch_size, _MAX_LOGIT_ELEMENTS // max(block_size * vocab, 1)))


@torch.inference_mode()
def score_token_blocks(model, tokens: np.ndarray, block_size: int, alphas: Sequence[float],
                       max_blocks: int | None, seed: int, batch_size: int = 32,
                       progress: Callable[[int, int], None] | None = None,
                       _indices: np.ndarray | None = None, topk: Sequence[int] = (),
                       vocab: int | None = None, predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       shard: Shard | None = None) -> TokenEvidence | None:
    """Token-level evidence: every aligned block, or ``max_blocks`` drawn uniformly with replacement.

    ``topk``: also the per-block top-k error rates (for the sequence-level top-k bound).
    ``_indices`` re-scores given blocks (verification). ``vocab``: V of the predictor
    (``predictor_vocab``; default the model's output size). ``predict``: inputs -> logits, default
    ``sublora.bounds.inference.predictor(model)`` (the merged network). The arithmetic is
    ``sublora.bounds.evidence.score_logits``, one batch of ``batch_rows`` blocks at a time (consecutive
    blocks of the draw). ``shard``: score only this process's batches; the evidence is returned on rank 0.
    """
    total_blocks = (len(tokens) - 1) // block_size
    if total_blocks < 1:
        raise ValueError(f"the training stream ({len(tokens)} tokens) is shorter than one block of {block_size}")
    sampled = max_blocks is not None and max_blocks < total_blocks
    indices = np.asarray(_indices) if _indices is not None else token_draw(total_blocks, max_blocks, seed)
    model.eval()
    vocab = vocab or model_outputs(model)
    predict = predict or predictor(model)
    rows = batch_rows(block_size, vocab, batch_size)
    offsets = np.arange(block_size + 1)
    batches = (len(indices) + rows - 1) // rows
    parts, mine, done = {}, _mine(batches, shard), 0
    todo = sum(len(indices[i * rows : (i + 1) * rows]) for i in mine)
    for n, i in enumerate(mine):
        release_freed(n)
        idx = indices[i * rows : (i + 1) * rows]
        window = torch.from_numpy(np.asarray(tokens[(idx[:, None] * block_size + offsets)], dtype=np.int64))  # (B, T+1)
        logits = _logits(predict, window[:, :-1], vocab)  # (B, T, V)
        parts[i] = score_logits(logits, window[:, 1:], alphas, vocab=vocab, topk=topk)
        done += len(idx)
        if progress:
            progress(done, todo)
    parts = _all_parts(parts, shard)
    if parts is None:
        return None
    scores = Scores.concat([parts[i] for i in range(batches)])
    return TokenEvidence(n=total_blocks * block_size, block_size=block_size, block_indices=indices,
                         sampled=bool(sampled), loss=scores.loss, xi2=scores.xi2, topk_error=dict(scores.topk_error),
                         loss_extremes=scores.loss_extremes)


def _document_windows(length: int, block_size: int, stride: int) -> list[tuple[int, int]]:
    """(window start, first scored target) of sliding windows that score each target exactly once.

    The first window scores its whole span; each later one is shifted so that it
    scores the next ``stride`` targets with at least block_size - stride of context.
    Every window has full length except a lone window over a document shorter than a block.
    """
    windows, end = [], 0
    while end < length:
        start = 0 if end == 0 else max(min(end + stride - block_size, length - block_size), 0)
        windows.append((start, end))
        end = min(start + block_size, length)
    return windows


@torch.inference_mode()
def score_documents(model, tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, eot_id: int,
                    block_size: int, stride: int, alphas: Sequence[float], topk: Sequence[int],
                    samples: int, seed: int, batch_size: int = 32,
                    progress: Callable[[int, int], None] | None = None, vocab: int | None = None,
                    _indices: np.ndarray | None = None, predict: Callable[[torch.Tensor], torch.Tensor] | None = None,
                    shard: Shard | None = None) -> DocumentEvidence | None:
    """Document-level evidence on ``samples`` documents drawn uniformly with replacement.

    Windows of many documents share each forward batch (a document of a few
    hundred tokens has only a few windows). Windows run longest first, so a batch
    right-padded to its first window carries little padding: GPT-2 is causal, so
    padding never changes the logits of real positions, and padded or
    already-scored positions are masked out before any statistic. A document
    drawn twice is scored once. ``_indices`` scores given documents instead of drawing (verification).
    ``predict`` and ``shard`` as in ``score_token_blocks``: each batch yields per-document partial sums,
    added up in batch order, so the result does not depend on how many processes shared the batches.
    """
    N = len(starts)
    if N < 1:
        raise ValueError("no training documents to sample from")
    stride = max(1, min(stride, block_size))
    indices = np.asarray(_indices, dtype=np.int64) if _indices is not None else document_draw(N, samples, seed)
    samples = len(indices)
    docs, slot = np.unique(indices, return_inverse=True)  # distinct documents; sample i is docs[slot[i]]
    lengths = (np.asarray(ends) - np.asarray(starts))[docs].astype(np.int64)
    if (lengths < 1).any():
        raise ValueError("every document must hold at least one token (its end-of-text)")
    model.eval()
    vocab = vocab or model_outputs(model)
    predict = predict or predictor(model)
    budget = batch_rows(block_size, vocab, batch_size) * block_size  # tokens per forward: the memory limit

    # Every window of every distinct document: (owner, start, first scored target, length), longest first,
    # cut into batches of at most `budget` tokens (padded to each batch's first window).
    windows = np.array([(j, s, f, min(block_size, L - s)) for j, L in enumerate(lengths)
                        for s, f in _document_windows(int(L), block_size, stride)], dtype=np.int64).reshape(-1, 4)
    windows = windows[np.argsort(-windows[:, 3], kind="stable")]
    cuts, i = [], 0
    while i < len(windows):
        cuts.append(i)
        i += max(1, budget // int(windows[i, 3]))
    cuts.append(len(windows))
    doc_start = np.asarray(starts, dtype=np.int64)[docs]
    parts, mine = {}, _mine(len(cuts) - 1, shard)
    windows_left = np.bincount(np.concatenate([windows[cuts[b]:cuts[b + 1], 0] for b in mine] or [np.zeros(0, np.int64)]),
                               minlength=len(docs))
    draws = np.bincount(slot, minlength=len(docs))  # how many samples each distinct document stands for
    mine_docs = windows_left > 0
    for n, b in enumerate(mine):
        release_freed(n)
        batch = windows[cuts[b] : cuts[b + 1]]  # (G, 4)
        parts[b] = _score_window_batch(predict, tokens, batch, doc_start, eot_id, alphas, topk, vocab)
        np.subtract.at(windows_left, batch[:, 0], 1)
        if progress:
            progress(int(draws[mine_docs & (windows_left == 0)].sum()), int(draws[mine_docs].sum()))
    parts = _all_parts(parts, shard)
    if parts is None:
        return None
    extremes = _Extremes(len(alphas))
    x_sum = torch.zeros(len(alphas), len(docs), dtype=torch.float64)
    wrong = {k: torch.zeros(len(docs), dtype=torch.int64) for k in topk}
    for b in range(len(cuts) - 1):  # in batch order: the same sums for any number of processes
        owners, x, errors, lo_hi = parts[b]
        extremes.update(lo_hi)
        x_sum[:, owners] += x
        for k in topk:
            wrong[k][owners] += errors[k]
    L = lengths[slot]  # (samples,)
    bpd = x_sum.numpy()[:, slot] / L  # (A, samples)
    errors = {k: wrong[k].numpy()[slot] / L for k in topk}
    return DocumentEvidence(N=N, indices=indices, bpd=bpd, topk_error=errors, tokens_scored=int(L.sum()),
                            loss_extremes=extremes.value)


def _score_window_batch(predict, tokens: np.ndarray, batch: np.ndarray, doc_start: np.ndarray, eot_id: int,
                        alphas: Sequence[float], topk: Sequence[int], vocab: int):
    """One forward over windows (G, 4) = (owner, start, first scored target, length), longest first.

    Returns the documents it touches (D,), their summed smoothed losses (A, D) float64, their top-k
    misses {k: (D,)} and the (min, max) smoothed loss of its tokens per alpha (A, 2).
    """
    width = int(batch[0, 3])  # the longest window of this batch: the others are padded to it
    owner, start, first, length = batch.T
    col = np.arange(width)
    pos = (doc_start[owner] + start)[:, None] + col  # (G, W): where each target sits in the stream
    real = col < length[:, None]  # (G, W): not padding
    targets = np.asarray(tokens[np.where(real, pos, 0)], dtype=np.int64)  # (G, W)
    inputs = np.asarray(tokens[np.where(real, pos - 1, 0).clip(0)], dtype=np.int64)  # (G, W): the token before each
    inputs[start == 0, 0] = eot_id  # a document's first token is predicted from an end-of-text token
    scored = torch.from_numpy(real & (col >= (first - start)[:, None]))  # (G, W)
    logits = _logits(predict, torch.from_numpy(inputs), vocab)[scored]  # (M, V): scored positions only
    y = torch.from_numpy(targets)[scored]  # (M,)
    docs, local = np.unique(owner, return_inverse=True)
    owners = torch.from_numpy(local.reshape(-1)).unsqueeze(1).expand(-1, width)[scored]  # (M,): document of each
    x = smoothed_loss(_target_logp(logits, y), alphas, vocab)  # (A, M)
    x_sum = torch.zeros(len(alphas), len(docs), dtype=torch.float64).index_add_(1, owners, x.double())
    rank = target_rank(logits, y)  # (M,)
    wrong = {k: torch.zeros(len(docs), dtype=torch.int64).index_add_(0, owners, (rank >= k).long()) for k in topk}
    lo_hi = torch.stack([x.amin(1), x.amax(1)], 1) if x.numel() else x  # (A, 2): what _Extremes needs of x
    return torch.from_numpy(docs), x_sum, wrong, lo_hi
