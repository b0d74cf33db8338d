"""dense: P independent of chunking and caching, chunked backward = P^T g, variance 1/D."""

from __future__ import annotations

import pytest
import torch

from sublora.core.errors import ConfigError
from sublora.core.registry import registry
from sublora.core.testing import build_projector, check_projector, materialize

torch.set_num_threads(1)


def dense(**options):
    return registry("projector").config("dense", options)


def test_chunked_equals_cached():
    D, d = 1000, 3000  # 21 rows per generator block: chunks of 1, 5 and all blocks
    cached = build_projector(dense(), D, d)
    assert cached.matrix is not None
    w, g = torch.randn(d), torch.randn(D)
    for chunk_size in (1, 100, 10_000):
        chunked = build_projector(dense(cache_mb=0, chunk_size=chunk_size), D, d)
        assert chunked.matrix is None
        assert torch.equal(chunked.rows(0, D), cached.matrix)  # the same P, bit for bit
        w_ = w.clone().requires_grad_(True)
        y = chunked(w_)
        torch.testing.assert_close(y, cached.matrix @ w, rtol=1e-5, atol=1e-5)
        y.backward(g)  # the custom backward regenerates the chunks
        torch.testing.assert_close(w_.grad, cached.matrix.T @ g, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("D,d", [(400, 36), (437, 23), (30, 50), (50, 1)])
def test_chunked_path_meets_the_contract(D, d):
    check_projector(dense(cache_mb=0, chunk_size=1), D, d)


def test_entries_have_variance_one_over_D():
    D, d = 1000, 2000
    P = materialize(build_projector("dense", D, d))
    assert abs(P.mean().item()) < 3 / (D * d) ** 0.5 / D**0.5
    assert abs(P.square().mean().item() * D - 1) < 0.01  # E[P^T P] = I


def test_nothing_stored_when_large():
    projector = build_projector("dense", 100_000, 1_000)  # 400 MB > cache_mb = 256
    assert projector.matrix is None and list(projector.buffers()) == []
    assert projector.chunk_rows * projector.d * 4 <= 64 << 20


def test_options_are_validated():
    with pytest.raises(ConfigError, match="chunk_size"):
        dense(chunk_size=0)
    with pytest.raises(ConfigError, match="unknown field"):
        dense(chunk=3)
