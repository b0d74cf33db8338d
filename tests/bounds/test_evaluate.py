"""Scoring for the bounds, checked against a direct per-token computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sublora.bounds.evaluate import _document_windows, score_documents, score_token_blocks
from sublora.core.build import build_model
from sublora.core.config import RunConfig

V, EOT, T = 257, 256, 16
ALPHAS = (0.01, 0.5)


@pytest.fixture(scope="module")
def model():
    cfg = RunConfig.from_dict({"model": {"preset": "tiny", "n_embd": 32, "n_head": 2, "n_layer": 1, "block_size": T},
                               "sublora": {"intrinsic_dim": 20}})
    m = build_model(cfg, V, EOT)
    with torch.no_grad():
        m.w.normal_(generator=torch.Generator().manual_seed(0))
    return m.eval()


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
    ev = score_token_blocks(model, tokens, T, ALPHAS, max_blocks=None, seed=0, batch_size=2)
    assert not ev.sampled and ev.n == 5 * T and list(ev.block_indices) == list(range(5))
    for a, alpha in enumerate(ALPHAS):
        for b in range(5):
            x, y, _ = _direct(model, tokens[b * T : b * T + T], tokens[b * T + 1 : b * T + T + 1], alpha)
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
