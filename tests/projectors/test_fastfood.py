"""fastfood: the FWHT, the explicit block product, the scale E[P^T P] = I, and the reference's lost scale."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.linalg import hadamard as scipy_hadamard

from sublora.core.testing import build_projector, check_projector, materialize, stored_numbers
from sublora.projectors.fastfood import fwht, hadamard

torch.set_num_threads(1)


@pytest.mark.parametrize("n", [1, 2, 4, 8, 32, 64, 128, 1024, 2048])
def test_fwht_is_the_normalized_hadamard_matrix(n):
    x = torch.randn(3, n, dtype=torch.float64)
    H = torch.from_numpy(scipy_hadamard(n).astype("float64")) / math.sqrt(n)
    torch.testing.assert_close(fwht(x), x @ H, rtol=0, atol=1e-12)
    torch.testing.assert_close(hadamard(n, torch.float64), H * math.sqrt(n), rtol=0, atol=0)


@pytest.mark.parametrize("n", [2, 64, 4096])
def test_fwht_is_its_own_inverse_and_orthogonal(n):
    x = torch.randn(5, n, dtype=torch.float64)
    y = fwht(x)
    torch.testing.assert_close(fwht(y), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(y.norm(dim=1), x.norm(dim=1), rtol=1e-12, atol=0)


def test_fwht_rejects_other_sizes():
    with pytest.raises(AssertionError, match="power of two"):
        fwht(torch.randn(12))


def explicit(projector) -> torch.Tensor:
    """The stacked blocks sqrt(d'/D) S H G Pi H B (S holds the sqrt(d'/D)) written out densely, cut to (D, d)."""
    m = projector.block_size
    H = torch.from_numpy(scipy_hadamard(m).astype("float32")) / math.sqrt(m)
    blocks = []
    for b in range(projector.blocks):
        Pi = torch.eye(m)[projector.Pi[b]]  # (Pi z)_i = z_{Pi[b, i]}
        blocks.append(torch.diag(projector.S[b]) @ H @ torch.diag(projector.G[b]) @ Pi @ H @ torch.diag(projector.B[b]))
    return torch.cat(blocks)[: projector.D, : projector.d]


@pytest.mark.parametrize("D,d", [(400, 36), (437, 23), (30, 50), (100, 64), (7, 1)])
def test_matvec_is_the_block_product(D, d):
    projector = build_projector("fastfood", D, d)
    assert projector.block_size == 1 << (d - 1).bit_length() and projector.blocks == -(-D // projector.block_size)
    torch.testing.assert_close(materialize(projector), explicit(projector), rtol=1e-4, atol=1e-5)


def test_expected_gram_is_identity():
    """Averaged over seeds, P^T P -> I: unit columns, uncorrelated columns (E[P^T P] = I)."""
    D, d, seeds = 300, 20, 200
    gram = torch.zeros(d, d, dtype=torch.float64)
    for seed in range(seeds):
        P = materialize(build_projector("fastfood", D, d, seed=seed)).double()
        gram += P.T @ P / seeds
    assert (gram.diagonal() - 1).abs().max() < 0.05
    assert (gram - torch.diag(gram.diagonal())).abs().max() < 0.05


def test_row_norms_are_those_of_gaussian_rows():
    """Row i of a full block has norm s_i / sqrt(D), s_i ~ chi(d'): mean square d' / D, like N(0, 1/D) rows."""
    D, d = 4096, 256  # d = d': the block's columns are all of P's
    P = materialize(build_projector("fastfood", D, d)).double()
    sq = P.square().sum(dim=1) * D / d  # ~ chi^2(d') / d': mean 1, variance 2 / d'
    assert abs(sq.mean().item() - 1) < 0.01
    assert abs(sq.var().item() - 2 / d) < 0.2 * 2 / d


def _scale(projector, samples: int = 8) -> float:
    ratios = []
    with torch.no_grad():
        for k in range(samples):
            w = torch.randn(projector.d, generator=torch.Generator().manual_seed(k))
            ratios.append((projector(w).square().sum() / w.square().sum()).item())
    return sum(ratios) / len(ratios)


def test_reference_trap_uniform_S_loses_the_scale():
    """The reference drew S ~ U[0, 1) and divided by sqrt(d'): E||P w||^2 / ||w||^2 = D / (3 d'^2), 0.11 here.

    GPT-2 small's D = 351,744 with d = 1000 (d' = 1024); sublora's S keeps the scale at 1.
    """
    D, d = 351_744, 1000
    projector = build_projector("fastfood", D, d)
    m = projector.block_size
    assert m == 1024
    assert abs(_scale(projector) - 1) < 0.05
    projector.S = torch.rand(projector.blocks, m, generator=torch.Generator().manual_seed(0)) / math.sqrt(m)
    reference = _scale(projector)
    assert abs(reference - D / (3 * m**2)) < 0.015 and 0.09 < reference < 0.13


@pytest.mark.parametrize("D,d", [(1, 5), (3, 4), (50, 1), (5, 2), (16, 16), (33, 17)])
def test_tiny_sizes(D, d):
    check_projector("fastfood", D, d, scale_seeds=512)  # one tiny P is far from E[P^T P] = I


def test_memory_is_order_D():
    D, d = 300_000, 5000  # d' = 8192: 37 blocks
    projector = build_projector("fastfood", D, d)
    assert stored_numbers(projector) == 4 * projector.blocks * projector.block_size <= 4 * (D + projector.block_size)
    w = torch.randn(d, requires_grad=True)
    projector(w).sum().backward()
    assert torch.isfinite(w.grad).all()


def test_buffers_are_cpu_and_outside_the_state_dict():
    projector = build_projector("fastfood", 420, 36)
    assert dict(projector.state_dict()) == {}
    assert {name for name, _ in projector.named_buffers()} == {"B", "G", "Pi", "S"}
    assert all(b.device.type == "cpu" for b in projector.buffers())


def test_float64_w():
    projector = build_projector("fastfood", 420, 36)
    w = torch.randn(36, dtype=torch.float64)
    y = projector(w)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, projector(w.float()).double(), rtol=1e-4, atol=1e-5)
