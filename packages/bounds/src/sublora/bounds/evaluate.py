"""Score the (quantized) model for the bounds: batched, in eval mode, under inference_mode.

Two predictors, both fixed before seeing the data:
- token level: the training stream is cut into aligned blocks of ``block_size``
  targets; token k is predicted from the tokens since the start of its block.
  Scoring a block therefore scores each of its tokens exactly once.
- document level: a document is predicted from an end-of-text token followed
  by its own tokens; long documents are scored with a sliding window of
  ``block_size`` and stride ``stride`` that never scores a token twice.
All losses are of the smoothed predictor p_h = (1 - alpha) p + alpha / V, in bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from sublora.core.bound import DocumentEvidence, TokenEvidence

LOG2E = 1.0 / math.log(2.0)
_MAX_LOGIT_ELEMENTS = 8_000_000  # batch * block * vocab per forward chunk


def _smoothed_stats(logits: torch.Tensor, targets: torch.Tensor, alphas: Sequence[float]):
    """Per-position smoothed loss X (bits), xi^2, and the rank of the target, for each alpha.

    logits (B, T, V), targets (B, T) -> X (A, B, T), xi2 (A, B, T), rank (B, T)
    """
    V = logits.size(-1)
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B, T, V)
    p = logp.exp()
    p_target = p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    target_logit = logits.gather(-1, targets.unsqueeze(-1))
    rank = (logits > target_logit).sum(-1)  # how many tokens beat the target (ties favour it)
    xs, xi2s = [], []
    for alpha in alphas:
        ph = (1.0 - alpha) * p + alpha / V
        x = -torch.log2((1.0 - alpha) * p_target + alpha / V)  # (B, T)
        y = -(ph * torch.log2(ph)).sum(-1)  # entropy of the smoothed prediction, bits
        xi = (y - x) / math.log2(V / alpha)
        xs.append(x)
        xi2s.append(xi * xi)
    return torch.stack(xs), torch.stack(xi2s), rank


def _rows_per_chunk(block_size: int, vocab: int, batch_size: int) -> int:
    return max(1, min(batch_size, _MAX_LOGIT_ELEMENTS // max(block_size * vocab, 1)))


@torch.inference_mode()
def score_token_blocks(model, tokens: np.ndarray, block_size: int, alphas: Sequence[float],
                       max_blocks: int | None, seed: int, batch_size: int = 32,
                       progress: Callable[[int, int], None] | None = None,
                       _indices: np.ndarray | None = None) -> TokenEvidence:
    """Token-level evidence: every aligned block, or ``max_blocks`` drawn uniformly with replacement.

    ``_indices`` re-scores given blocks (verification).
    """
    total_blocks = (len(tokens) - 1) // block_size
    if total_blocks < 1:
        raise ValueError(f"the training stream ({len(tokens)} tokens) is shorter than one block of {block_size}")
    sampled = max_blocks is not None and max_blocks < total_blocks
    if _indices is not None:
        indices = np.asarray(_indices)
    elif sampled:
        indices = np.random.default_rng(seed).integers(0, total_blocks, size=max_blocks)
    else:
        indices = np.arange(total_blocks)
    model.eval()
    theta = model.flat_params()
    rows = _rows_per_chunk(block_size, int(model.net.get_output_embeddings().out_features), batch_size)
    loss = np.empty((len(alphas), len(indices)))
    xi2 = np.empty_like(loss)
    offsets = np.arange(block_size + 1)
    for start in range(0, len(indices), rows):
        idx = indices[start : start + rows]
        window = torch.from_numpy(np.asarray(tokens[(idx[:, None] * block_size + offsets)], dtype=np.int64))
        logits = model(window[:, :-1], theta)
        x, q, _ = _smoothed_stats(logits, window[:, 1:], alphas)
        loss[:, start : start + len(idx)] = x.mean(-1).double().numpy()
        xi2[:, start : start + len(idx)] = q.mean(-1).double().numpy()
        if progress:
            progress(min(start + rows, len(indices)), len(indices))
    return TokenEvidence(n=total_blocks * block_size, block_size=block_size, block_indices=indices,
                         sampled=bool(sampled), loss=loss, xi2=xi2)


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
                    progress: Callable[[int, int], None] | None = None) -> DocumentEvidence:
    """Document-level evidence on ``samples`` documents drawn uniformly with replacement."""
    N = len(starts)
    if N < 1:
        raise ValueError("no training documents to sample from")
    stride = max(1, min(stride, block_size))
    indices = np.random.default_rng(seed).integers(0, N, size=samples)
    model.eval()
    theta = model.flat_params()
    rows = _rows_per_chunk(block_size, int(model.net.get_output_embeddings().out_features), batch_size)
    bpd = np.empty((len(alphas), samples))
    errors = {k: np.empty(samples) for k in topk}
    scored_total = 0
    for i, doc in enumerate(indices):
        targets = np.asarray(tokens[starts[doc] : ends[doc]], dtype=np.int64)
        inputs = np.concatenate([[eot_id], targets[:-1]])
        L = len(targets)
        x_sum = torch.zeros(len(alphas), dtype=torch.float64)
        wrong = {k: 0 for k in topk}
        windows = _document_windows(L, block_size, stride)
        # Full-length windows run in batches; a lone short window (document < block) runs alone.
        if windows[0][0] + block_size > L:
            batches = [(windows, L)]
        else:
            batches = [(windows[j : j + rows], block_size) for j in range(0, len(windows), rows)]
        for group, length in batches:
            xin = torch.from_numpy(np.stack([inputs[s : s + length] for s, _ in group]))
            yt = torch.from_numpy(np.stack([targets[s : s + length] for s, _ in group]))
            x, _, rank = _smoothed_stats(model(xin, theta), yt, alphas)
            first = torch.tensor([f - s for s, f in group]).unsqueeze(1)  # (G, 1)
            mask = torch.arange(length).unsqueeze(0) >= first  # (G, length): targets this window scores
            x_sum += (x * mask).sum(dim=(1, 2)).double()
            for k in topk:
                wrong[k] += int(((rank >= k) & mask).sum())
        bpd[:, i] = (x_sum / L).numpy()
        for k in topk:
            errors[k][i] = wrong[k] / L
        scored_total += L
        if progress:
            progress(i + 1, samples)
    return DocumentEvidence(N=N, indices=indices, bpd=bpd, topk_error=errors, tokens_scored=scored_total)
