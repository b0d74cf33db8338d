"""sparse: one entry +-1/sqrt(k) per band of rows in each column, balanced rows, full coverage, O(nnz) memory."""

from __future__ import annotations

import math

import pytest
import torch

from sublora.core.errors import ConfigError
from sublora.core.registry import registry
from sublora.core.testing import build_projector, check_coverage, check_projector, materialize, stored_numbers
from sublora.projectors import sparse as sparse_module
from sublora.projectors.sparse import balanced_offsets, band_starts, nonzeros_per_column

torch.set_num_threads(1)


def sparse(**options):
    return registry("projector").config("sparse", options)


@pytest.mark.parametrize("D,d", [(400, 36), (437, 23), (30, 50), (10_000, 200)])
def test_one_entry_per_band_in_every_column_and_balanced_rows(D, d):
    projector = build_projector("sparse", D, d)
    k = projector.k
    assert k == max(round(math.sqrt(D)), -(-D // d))  # density 1/sqrt(D): k ~ sqrt(D)
    P = materialize(projector)
    assert ((P != 0).sum(dim=0) == k).all()  # exactly k distinct rows per column
    assert set(P[P != 0].abs().unique().tolist()) == pytest.approx([1 / math.sqrt(k)])  # values +-1/sqrt(k)
    torch.testing.assert_close(P.norm(dim=0), torch.ones(d))  # unit columns: E[P^T P] = I
    starts = band_starts(D, k).tolist()
    for lo, hi in zip(starts[:-1], starts[1:]):
        band = P[lo:hi] != 0
        assert (band.sum(dim=0) == 1).all()  # each column has exactly one row in each band
        per_row = band.sum(dim=1)  # the d columns spread evenly over the band's rows: none empty
        assert per_row.min() >= d // (hi - lo) >= 1 and per_row.max() <= -(-d // (hi - lo))


def test_coo_is_P_and_backward_is_its_transpose():
    projector = build_projector("sparse", 437, 23)
    P = materialize(projector)
    rows, cols, values = projector.coo()
    torch.testing.assert_close(torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (437, 23), check_invariants=True).to_dense(), P)
    w, g = torch.randn(23, requires_grad=True), torch.randn(437)
    projector(w).backward(g)
    torch.testing.assert_close(w.grad, P.T @ g)


def test_chunks_do_not_change_P(monkeypatch):
    whole = materialize(build_projector("sparse", 437, 23))
    monkeypatch.setattr(sparse_module, "CHUNK_ENTRIES", 23 * 2)  # two bands per chunk (and a short last one)
    projector = build_projector("sparse", 437, 23)
    assert projector.bands_per_chunk == 2 and projector.k % 2 == 1
    torch.testing.assert_close(materialize(projector), whole, rtol=0, atol=0)
    w, g = torch.randn(23, requires_grad=True), torch.randn(437)
    projector(w).backward(g)
    torch.testing.assert_close(w.grad, whole.T @ g)


def test_density_option():
    assert build_projector(sparse(density=0.1), 1000, 50).k == 100
    assert build_projector(sparse(density=1.0), 40, 3).k == 40  # fully dense columns
    # d k < D would leave rows empty: k is raised to ceil(D / d)
    projector = build_projector(sparse(density=0.001), 1000, 5)
    assert projector.k == 200
    check_coverage(sparse(density=0.001), 1000, 5)
    assert nonzeros_per_column(10, 1, None) == 10 and nonzeros_per_column(10**6, 10**4, None) == 1000


def test_balanced_offsets_are_balanced_and_uniform():
    generator = torch.Generator().manual_seed(0)
    for d, m in [(23, 20), (50, 50), (1000, 7), (5, 1)]:
        counts = torch.bincount(balanced_offsets(d, m, generator), minlength=m)
        assert counts.min() == d // m and counts.max() == -(-d // m)
    # uniform: over many draws every column takes every offset equally often
    draws = torch.stack([balanced_offsets(6, 3, generator) for _ in range(3000)])  # (3000, 6)
    freq = torch.stack([(draws == v).double().mean(dim=0) for v in range(3)])  # (3, 6), each ~1/3
    assert (freq - 1 / 3).abs().max() < 0.04


def test_every_row_is_covered_for_every_seed(monkeypatch):
    """At D = 437, d = 23 (about 21 rows per band, 23 columns) unbalanced random picks would leave rows empty."""
    for seed in range(10):
        check_coverage("sparse", 437, 23, seed=seed)
    monkeypatch.setattr(sparse_module, "balanced_offsets",
                        lambda d, m, generator: torch.randint(0, m, (d,), generator=generator))
    with pytest.raises(AssertionError, match="coordinates of theta never move"):
        check_coverage("sparse", 437, 23)


def test_memory_is_order_nnz():
    D, d = 100_000, 1_000  # D d = 1e8; nnz = d k = 316_000
    projector = build_projector("sparse", D, d)
    assert projector.nnz == d * 316
    assert stored_numbers(projector) == projector.nnz  # one index per nonzero, no copy of P^T
    assert projector.index.dtype == torch.int32  # 4 bytes per nonzero in all
    assert stored_numbers(projector) < D * d / 50


def test_scale_is_one():
    D, d = 2000, 100
    ratios = []
    with torch.no_grad():
        for seed in range(20):
            projector = build_projector("sparse", D, d, seed=seed)
            w = torch.randn(d, generator=torch.Generator().manual_seed(seed))
            ratios.append((projector(w).square().sum() / w.square().sum()).item())
    assert abs(sum(ratios) / len(ratios) - 1) < 0.05


@pytest.mark.parametrize("D,d", [(1, 5), (3, 4), (50, 1), (5, 2), (16, 16)])
def test_tiny_sizes(D, d):
    check_projector("sparse", D, d, scale_seeds=256)


def test_buffers_are_cpu_and_outside_the_state_dict():
    projector = build_projector("sparse", 420, 36)
    assert dict(projector.state_dict()) == {}
    assert all(b.device.type == "cpu" for b in projector.buffers())


def test_float64_w():
    projector = build_projector("sparse", 420, 36)
    w = torch.randn(36, dtype=torch.float64, requires_grad=True)
    y = projector(w)
    assert y.dtype == torch.float64
    y.sum().backward()
    assert w.grad.dtype == torch.float64
    torch.testing.assert_close(y, projector(w.detach().float()).double(), rtol=1e-5, atol=1e-6)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="density"):
        sparse(density=0)
    with pytest.raises(ConfigError, match="density"):
        sparse(density=1.5)
    with pytest.raises(ConfigError, match="unknown field"):
        sparse(k=3)
