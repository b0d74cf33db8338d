"""sparse: k distinct rows of +-1/sqrt(k) per column, both CSR copies agree, full coverage, O(nnz) memory."""

from __future__ import annotations

import math

import pytest
import torch

from sublora.core.errors import ConfigError
from sublora.core.registry import registry
from sublora.core.testing import build_projector, check_coverage, check_projector, materialize, stored_numbers
from sublora.projectors import sparse as sparse_module
from sublora.projectors.sparse import cover_empty_rows, distinct_rows, nonzeros_per_column

torch.set_num_threads(1)


def sparse(**options):
    return registry("projector").config("sparse", options)


@pytest.mark.parametrize("D,d", [(400, 36), (437, 23), (30, 50), (10_000, 200)])
def test_columns_have_k_distinct_entries_of_unit_norm(D, d):
    projector = build_projector("sparse", D, d)
    k = projector.k
    assert k == max(round(math.sqrt(D)), -(-D // d))  # density 1/sqrt(D): k ~ sqrt(D)
    P = materialize(projector)
    assert ((P != 0).sum(dim=0) == k).all()  # exactly k distinct rows per column
    assert set(P[P != 0].abs().unique().tolist()) == pytest.approx([1 / math.sqrt(k)])  # values +-1/sqrt(k)
    torch.testing.assert_close(P.norm(dim=0), torch.ones(d))  # unit columns: E[P^T P] = I
    assert ((P != 0).sum(dim=1) > 0).all()  # and no empty row


def test_both_csr_copies_are_P():
    projector = build_projector("sparse", 437, 23)
    P = materialize(projector)
    torch.testing.assert_close(projector.matrix().to_dense(), P, rtol=0, atol=0)
    torch.testing.assert_close(projector.matrix_t().to_dense(), P.T, rtol=0, atol=0)
    w, g = torch.randn(23, requires_grad=True), torch.randn(437)
    projector(w).backward(g)
    torch.testing.assert_close(w.grad, P.T @ g)


def test_density_option():
    assert build_projector(sparse(density=0.1), 1000, 50).k == 100
    assert build_projector(sparse(density=1.0), 40, 3).k == 40  # fully dense columns
    # d k < D would leave rows empty: k is raised to ceil(D / d)
    projector = build_projector(sparse(density=0.001), 1000, 5)
    assert projector.k == 200
    check_coverage(sparse(density=0.001), 1000, 5)
    assert nonzeros_per_column(10, 1, None) == 10 and nonzeros_per_column(10**6, 10**4, None) == 1000


def test_distinct_rows_sparse_and_dense_paths():
    generator = torch.Generator().manual_seed(0)
    for D, k in [(1000, 30), (40, 10), (40, 39), (5, 5)]:  # k < D / 4 redraws repeats; else a permutation
        rows = distinct_rows(300, D, k, generator)
        assert rows.shape == (300, k) and rows.min() >= 0 and rows.max() < D
        assert (rows[:, 1:] > rows[:, :-1]).all()  # sorted and distinct
    rows = distinct_rows(20_000, 100, 10, generator)  # uniform: every row about 20_000 * 10 / 100 times
    counts = torch.bincount(rows.flatten(), minlength=100).double()
    assert (counts - 2000).abs().max() < 5 * math.sqrt(2000)


def test_cover_empty_rows_moves_only_spare_entries():
    D, d, k = 100, 12, 9  # d k = 108 >= D, but random columns leave about 35 rows empty
    generator = torch.Generator().manual_seed(1)
    rows = distinct_rows(d, D, k, generator)
    signs = torch.randint(0, 2, (d, k), generator=generator) * 2.0 - 1.0
    before = torch.bincount(rows.flatten(), minlength=D)
    assert (before == 0).sum() > 20
    new_rows, new_signs = cover_empty_rows(rows, signs, D, generator)
    after = torch.bincount(new_rows.flatten(), minlength=D)
    assert (after >= 1).all()  # every row covered
    assert (new_rows[:, 1:] > new_rows[:, :-1]).all()  # columns still have k distinct sorted rows
    assert (after[before > 0] <= before[before > 0]).all()  # donors only give entries away
    assert (new_signs.sum(dim=1) == signs.sum(dim=1)).all()  # each column keeps its signs
    moved = (before[before > 0] - after[before > 0]).sum()
    assert moved == (before == 0).sum()  # one entry per empty row, nothing else moves


def test_every_row_is_covered_for_every_seed(monkeypatch):
    """At D = 437, d = 23 (d k = 483) random columns leave rows empty; the spare entries moved in cover them."""
    for seed in range(10):
        check_coverage("sparse", 437, 23, seed=seed)
    monkeypatch.setattr(sparse_module, "cover_empty_rows", lambda rows, signs, D, generator: (rows, signs))
    with pytest.raises(AssertionError, match="coordinates of theta never move"):
        check_coverage("sparse", 437, 23)


def test_memory_is_order_nnz():
    D, d = 100_000, 1_000  # D d = 1e8; nnz = d k = 316_000
    projector = build_projector("sparse", D, d)
    assert projector.nnz == d * 316
    assert stored_numbers(projector) == 4 * projector.nnz + (D + 1) + (d + 1)  # two CSR copies
    assert projector.col.dtype == torch.int32  # 4-byte indices: 16 bytes per nonzero in all
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
