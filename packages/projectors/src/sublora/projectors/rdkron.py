"""Rounded double Kronecker projector: P = Perm * BlockDiag(R1 (x) R2, E).

The Kronecker block K = R1 (x) R2 (m x n, m = a1 a2, n = b1 b2) maps w[:n] to
m coordinates: reshape w[:n] to W (b1, b2), then K vec(W) = vec(R1 W R2^T), in
O(a1 b1 b2 + a1 b2 a2) = O(sqrt(D) d + D sqrt(d)). E, a small dense block,
maps the leftover w[n:] to the leftover D - m coordinates. A random
permutation scatters the m + (D - m) outputs over the D coordinates.

Scale: every random factor F (r x c) satisfies E[F^T F] = I, so E[P^T P] = I.
Plain: entries N(0, 1/r). Variant ``qr``: F has orthonormal columns (Haar, from
a sign-fixed QR of a Gaussian) when r >= c; when r < c (only when D < d) it is
sqrt(c/r) times a matrix with orthonormal rows, a tight frame. So with D >= d,
``rdkron:qr`` has P^T P = I exactly.

The factor sizes, unlike the reference's fixed a = (r_D, r_D), b = (r_d, r_d),
are picked by ``kron_plan`` so that no coordinate is dead (the reference
traps; r = floor(sqrt(.))):

1. d a perfect square, D not: the reference's E had no columns, so its D - r_D^2
   rows never moved. Here the leftover rows and leftover columns are either
   both present or both absent, so every row of P is nonzero.
2. D a perfect square, d not: the reference's E had no rows, so w's leftover
   coordinates did nothing yet were paid for. Same rule: every column nonzero.
   Moreover E is never wider than tall when D >= d, so P has full column rank
   (no direction of w is wasted), and never taller than wide when D < d.
3. D < d (r_D < r_d): the reference QR'd a wide factor and crashed. Here the
   factors are a_i <= b_i and orthonormalized by rows (the tight frame above).

Candidates are a in {(r_D, r_D), (r_D, r_D - 1), (r_D - 1, r_D - 1)} and the same
for b; among the valid ones the plan with the smallest E is kept. If none is
valid (only for tiny D or d, e.g. d = 1 with D not a square), P is all E: a
dense Gaussian D x d, which is then small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.projectors.configs.rdkron import RdkronConfig


@dataclass(frozen=True)
class KronPlan:
    """Kronecker factor shapes: R1 is (a1, b1), R2 is (a2, b2); E is (D - m, d - n)."""

    D: int
    d: int
    a1: int
    a2: int
    b1: int
    b2: int

    @property
    def m(self) -> int:
        return self.a1 * self.a2

    @property
    def n(self) -> int:
        return self.b1 * self.b2

    @property
    def leftover(self) -> tuple[int, int]:
        return self.D - self.m, self.d - self.n

    def valid(self) -> bool:
        rows, cols = self.leftover
        if rows < 0 or cols < 0 or (rows > 0) != (cols > 0):
            return False  # a block with rows but no columns (or the reverse) leaves coordinates dead
        if self.m == 0:
            return self.n == 0
        if self.D >= self.d:  # every block at least as tall as wide: full column rank
            return self.a1 >= self.b1 and self.a2 >= self.b2 and rows >= cols
        return self.a1 <= self.b1 and self.a2 <= self.b2 and rows <= cols  # full row rank


def _candidates(r: int) -> list[tuple[int, int]]:
    return [(x, y) for x, y in ((r, r), (r, r - 1), (r - 1, r - 1)) if y >= 1]


def kron_plan(D: int, d: int) -> KronPlan:
    """The factor shapes for D outputs and d inputs (see the module docstring)."""
    plans = [
        KronPlan(D, d, a1, a2, b1, b2)
        for a1, a2 in _candidates(math.isqrt(D))
        for b1, b2 in _candidates(math.isqrt(d))
    ]
    plans = [p for p in plans if p.valid()]
    if not plans:
        return KronPlan(D, d, 0, 0, 0, 0)  # all dense: only for tiny D or d
    return min(plans, key=lambda p: (p.leftover[0] * p.leftover[1], -p.n, -p.m))


def random_factor(rows: int, cols: int, generator: torch.Generator, orthonormal: bool) -> torch.Tensor:
    """A (rows, cols) float32 factor F with E[F^T F] = I, drawn on the CPU."""
    g = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    if rows == 0 or cols == 0:
        return g.float()
    if not orthonormal:
        return (g / math.sqrt(rows)).float()
    tall = rows >= cols
    q, r = torch.linalg.qr(g if tall else g.T)  # q: (max, min) with orthonormal columns
    q = q * torch.where(r.diagonal() >= 0, 1.0, -1.0)  # sign fix: q is Haar distributed
    return (q if tall else q.T * math.sqrt(cols / rows)).float()


class RdkronProjector(Projector):
    linear = True

    def __init__(self, config: RdkronConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        self.plan = plan = kron_plan(self.D, self.d)
        orthonormal = config.variant == "qr"
        rows, cols = plan.leftover
        self.register_buffer("R1", random_factor(plan.a1, plan.b1, self.generator(1), orthonormal), persistent=False)
        self.register_buffer("R2", random_factor(plan.a2, plan.b2, self.generator(2), orthonormal), persistent=False)
        self.register_buffer("E", random_factor(rows, cols, self.generator(3), orthonormal), persistent=False)
        # output coordinate i takes entry source[i] of [K w[:n], E w[n:]]
        self.register_buffer("source", torch.randperm(self.D, generator=self.generator(4)), persistent=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        plan = self.plan
        parts = []
        if plan.m:
            W = w[: plan.n].view(plan.b1, plan.b2)
            R1, R2 = self.R1.to(w.dtype), self.R2.to(w.dtype)
            parts.append((R1 @ W @ R2.T).reshape(plan.m))  # (a1, b1)(b1, b2)(b2, a2) -> (m,)
        if plan.m < self.D:
            parts.append(self.E.to(w.dtype) @ w[plan.n :])  # (D - m,)
        return torch.cat(parts)[self.source]  # (D,)
