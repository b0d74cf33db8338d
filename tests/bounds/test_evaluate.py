"""Scoring for the bounds, checked against a direct per-token computation."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from sublora.bounds.evaluate import _document_windows, score_documents, score_token_blocks

from tiny_scoring import EOT, T, V, tiny_scoring_model
ALPHAS = (0.01, 0.5)


@pytest.fixture(scope="module")
def model():
    return tiny_scoring_model()


def _direct(model, inputs, targets, alpha):
    """Smoothed loss (bits), smoothed entropy (bits) and target rank per position, the slow way."""
    with torch.no_grad():
        p = torch.softmax(model(torch.from_numpy(np.asarray([inputs], dtype=np.int64)))[0].double(), -1)
    ph = (1 - alpha) * p + alpha / V
    x = [-math.log2(ph[i, t]) for i, t in enumerate(targets)]
    y = [float(-(ph[i] * torch.log2(ph[i])).sum()) for i in range(len(targets))]
    ranks = [int((p[i] > p[i, t]).sum()) for i, t in enumerate(targets)]
    return np.array(x), np.array(y), np.array(ranks)


@pytest.mark.parametrize("length, block, stride", [(5, 8, 4), (8, 8, 4), (20, 8, 4), (20, 8, 8), (21, 8, 3), (100, 16, 5)])
def test_windows_score_every_target_exactly_once(length, block, stride):
    covered = []
    windows = _document_windows(length, block, stride)
    for start, first in windows:
        assert start <= first and (start + block <= length or len(windows) == 1)
        covered += range(first, min(start + block, length))
    assert covered == list(range(length))


def test_token_blocks_match_direct_computation(model):
    tokens = np.random.default_rng(0).integers(0, V, size=5 * T + 3)
    ev = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=None, seed=0, batch_size=2, topk=(1, 3))
    assert not ev.sampled and ev.n == 5 * T and list(ev.block_indices) == list(range(5))
    for a, alpha in enumerate(ALPHAS):
        for b in range(5):
            x, y, ranks = _direct(model, tokens[b * T : b * T + T], tokens[b * T + 1 : b * T + T + 1], alpha)
            for k in (1, 3):  # share of the block's tokens outside the model's top k
                assert ev.topk_error[k][b] == pytest.approx((ranks >= k).mean())
            assert ev.loss[a, b] == pytest.approx(x.mean(), rel=1e-5)
            xi = (y - x) / math.log2(V / alpha)
            assert ev.xi2[a, b] == pytest.approx((xi**2).mean(), rel=1e-4, abs=1e-7)


def test_sampled_blocks_are_seeded(model):
    tokens = np.random.default_rng(1).integers(0, V, size=50 * T + 1)
    a = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=7, seed=3)
    b = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=7, seed=3)
    assert a.sampled and a.blocks == 7 and np.array_equal(a.block_indices, b.block_indices)
    assert np.array_equal(a.loss, b.loss)


@pytest.mark.parametrize("length", [5, T, 3 * T + 5])
def test_documents_match_direct_computation(model, length):
    rng = np.random.default_rng(length)
    doc = np.concatenate([rng.integers(0, 256, size=length - 1), [EOT]])
    tokens = np.concatenate([doc, doc])  # two identical documents
    starts, ends = np.array([0, length]), np.array([length, 2 * length])
    ev = score_documents(model, tokens, starts, ends, EOT, T, T, ALPHAS, (1, 10), samples=3, seed=0)
    inputs = np.concatenate([[EOT], doc[:-1]])
    for a, alpha in enumerate(ALPHAS):
        xs, ranks = [], []
        for s, first in _document_windows(length, T, T):  # the last window is shifted back to full length
            x, _, r = _direct(model, inputs[s : s + T], doc[s : s + T], alpha)
            xs.append(x[first - s :]), ranks.append(r[first - s :])
        x, r = np.concatenate(xs), np.concatenate(ranks)
        assert np.allclose(ev.bpd[a], x.mean(), rtol=1e-5)
    assert np.allclose(ev.topk_error[1], (r >= 1).mean())
    assert np.allclose(ev.topk_error[10], (r >= 10).mean())
    assert ev.N == 2 and ev.tokens_scored == 3 * length


LENGTHS = (5, T, T + 1, 3 * T + 5, 40)  # shorter than, equal to and longer than a block
DOCS = [np.concatenate([np.random.default_rng(n).integers(0, EOT, size=n - 1), [EOT]]) for n in LENGTHS]


@functools.cache
def _direct_document(model, d, stride):
    """Target probability and rank of every token of document d, one forward per token.

    The context the docstring promises, written out per target t (inputs are an
    end-of-text token followed by the document): targets before the block size are
    predicted from the document's start; later ones in runs of ``stride``, each
    run from a window of a block of inputs ending with the run (clamped to the
    document's end).
    """
    doc = DOCS[d]
    inputs = np.concatenate([[EOT], doc[:-1]])
    L, probs, ranks = len(doc), [], []
    for t in range(L):
        first = t if t < T else T + (t - T) // stride * stride  # first target of t's run
        start = 0 if t < T else min(first + stride - T, L - T)
        assert start <= t < start + T and (t < T or t - start >= T - stride)
        with torch.no_grad():
            logits = model(torch.from_numpy(np.asarray([inputs[start : t + 1]], dtype=np.int64)))[0, -1]  # (V,)
        probs.append(float(torch.softmax(logits.double(), -1)[doc[t]]))
        ranks.append(int((logits > logits[doc[t]]).sum()))
    return np.array(probs), np.array(ranks)


@pytest.mark.parametrize("stride", [T, 5, 1])
@pytest.mark.parametrize("batch_size", [32, 3])
def test_batched_documents_match_a_per_token_loop(model, stride, batch_size):
    """Windows of many documents share batches (padded, masked); a document drawn twice is scored once."""
    tokens = np.concatenate(DOCS).astype(np.uint16)
    ends = np.cumsum(LENGTHS)
    starts = ends - LENGTHS
    samples, seed, topk = 12, 5, (1, 10)
    seen = []
    ev = score_documents(model, tokens, starts, ends, EOT, T, stride, ALPHAS, topk, samples, seed,
                         batch_size=batch_size, progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(ev.indices, np.random.default_rng(seed).integers(0, len(DOCS), size=samples))
    assert set(ev.indices) == set(range(len(DOCS))) and len(set(ev.indices)) < samples  # every kind, some twice
    assert ev.tokens_scored == sum(LENGTHS[d] for d in ev.indices)
    assert seen[-1] == (samples, samples) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    for i, d in enumerate(ev.indices):
        p, ranks = _direct_document(model, d, stride)
        for a, alpha in enumerate(ALPHAS):
            assert ev.bpd[a, i] == pytest.approx(np.mean(-np.log2((1 - alpha) * p + alpha / V)), rel=1e-5)
        for k in topk:
            assert ev.topk_error[k][i] == (ranks >= k).mean()
