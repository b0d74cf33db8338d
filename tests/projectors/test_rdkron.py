"""rdkron math, and regressions for the traps of the reference code (projectors.md)."""

from __future__ import annotations

import math

import pytest
import torch

from sublora.core.testing import build_projector, check_coverage, check_projector, materialize, stored_numbers
from sublora.projectors import rdkron
from sublora.projectors.rdkron import KronPlan, kron_plan

torch.set_num_threads(1)

# (D, d): both perfect squares, D square, d square, neither, D < d with r_D < r_d
SIZES = [(400, 36), (400, 40), (420, 36), (437, 23), (10, 50)]


def reference_plan(D: int, d: int) -> KronPlan:
    """The reference's factor shapes: r_D x r_d factors whatever the leftovers."""
    rD, rd = math.isqrt(D), math.isqrt(d)
    return KronPlan(D, d, rD, rD, rd, rd)


def explicit(projector) -> torch.Tensor:
    """Perm * BlockDiag(R1 (x) R2, E) written out densely."""
    block = torch.block_diag(torch.kron(projector.R1, projector.R2), projector.E)  # (D, d)
    return block[projector.source]


@pytest.mark.parametrize("D,d", SIZES)
@pytest.mark.parametrize("spec", ["rdkron", "rdkron:qr"])
def test_matvec_is_the_kronecker_product(spec, D, d):
    projector = build_projector(spec, D, d)
    torch.testing.assert_close(materialize(projector), explicit(projector), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("D,d", [(400, 36), (400, 40), (420, 36), (437, 23), (351, 351)])
def test_qr_is_an_isometry_when_D_at_least_d(D, d):
    P = materialize(build_projector("rdkron:qr", D, d))
    n = kron_plan(D, d).n
    torch.testing.assert_close(P[:, :n].T @ P[:, :n], torch.eye(n), atol=1e-5, rtol=0)  # the Kronecker block
    torch.testing.assert_close(P.T @ P, torch.eye(d), atol=1e-5, rtol=0)  # and all of P


@pytest.mark.parametrize("D,d", [(400, 36), (400, 40), (420, 36), (437, 23)])
def test_plain_has_full_column_rank(D, d):
    assert torch.linalg.matrix_rank(materialize(build_projector("rdkron", D, d))) == d


def test_plan_sweep():
    """Every (D, d) up to 150 gets a valid plan: no dead row or column, full rank, a small leftover block."""
    for D in range(1, 151):
        for d in range(1, 151):
            plan = kron_plan(D, d)
            assert plan.valid(), plan
            rows, cols = plan.leftover
            if plan.m == 0:
                assert min(D, d) == 1, f"all-dense fallback at {plan}"
            else:
                assert rows * cols <= 6 * math.sqrt(D * d), plan


def test_trap1_perfect_square_d_freezes_no_coordinate(monkeypatch):
    """Reference: d = r_d^2 leaves E without columns, so D - r_D^2 coordinates of theta never move."""
    D, d = 420, 36
    check_coverage("rdkron:qr", D, d)
    plan = kron_plan(D, d)
    assert plan.leftover[0] > 0 and plan.leftover[1] > 0
    monkeypatch.setattr(rdkron, "kron_plan", reference_plan)
    with pytest.raises(AssertionError, match="20 coordinates of theta never move"):
        check_coverage("rdkron:qr", D, d)


def test_trap2_perfect_square_D_wastes_no_coordinate_of_w(monkeypatch):
    """Reference: D = r_D^2 leaves E without rows, so d - r_d^2 coordinates of w do nothing yet are paid for."""
    D, d = 400, 40
    check_coverage("rdkron:qr", D, d)
    monkeypatch.setattr(rdkron, "kron_plan", reference_plan)
    with pytest.raises(AssertionError, match="4 coordinates of w never reach theta"):
        check_coverage("rdkron:qr", D, d)


@pytest.mark.parametrize("D,d", [(10, 50), (30, 50), (16, 49), (7, 100)])
@pytest.mark.parametrize("spec", ["rdkron", "rdkron:qr"])
def test_trap3_D_below_d_works(spec, D, d):
    """Reference: with D < d the QR factor is square and the Kronecker matvec crashes."""
    check_projector(spec, D, d)
    assert torch.linalg.matrix_rank(materialize(build_projector(spec, D, d))) == D  # every direction of theta reached


@pytest.mark.parametrize("D,d", [(50, 1), (1, 5), (3, 4), (5, 2)])
@pytest.mark.parametrize("spec", ["rdkron", "rdkron:qr"])
def test_tiny_sizes(spec, D, d):
    check_projector(spec, D, d, scale_seeds=512)  # one tiny Gaussian P is far from E[P^T P] = I


def test_gpt2_small_size():
    """D of GPT-2 small with LoRA r = 4 on q, v and the head; d = 50k: small memory, leftovers full rank."""
    D, d = 351_744, 50_000
    plan = kron_plan(D, d)
    assert plan.valid() and plan.leftover[0] >= plan.leftover[1] > 0
    projector = build_projector("rdkron:qr", D, d)
    assert stored_numbers(projector) < 3 * D  # the permutation plus O(sqrt(D d)) factors
    w = torch.randn(d, requires_grad=True)
    y = projector(w)
    assert y.shape == (D,)
    torch.testing.assert_close(y.square().sum(), w.square().sum(), rtol=1e-4, atol=0)  # an isometry
    y.sum().backward()
    assert torch.isfinite(w.grad).all()


def test_factors_are_cpu_buffers_outside_the_state_dict():
    projector = build_projector("rdkron:qr", 420, 36)
    assert dict(projector.state_dict()) == {}
    assert {name for name, _ in projector.named_buffers()} == {"R1", "R2", "E", "source"}
    assert all(b.device.type == "cpu" for b in projector.buffers())


def test_float64_w():
    projector = build_projector("rdkron", 420, 36)
    w = torch.randn(36)
    torch.testing.assert_close(projector(w.double()).float(), projector(w), rtol=1e-5, atol=1e-6)
