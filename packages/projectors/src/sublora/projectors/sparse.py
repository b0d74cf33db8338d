"""Very sparse random projector (Achlioptas 2003; Li, Hastie, Church 2006), stored as CSR."""

from __future__ import annotations

import math
import warnings

import torch
from torch.autograd.function import once_differentiable

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.projectors.configs.sparse import SparseConfig

#: numbers drawn per generator block (at least one column): fixes P for a given (seed, D, d, density)
BLOCK_NUMBERS = 1 << 16


def nonzeros_per_column(D: int, d: int, density: float | None) -> int:
    """k = round(density * D) (density 1/sqrt(D) by default), at least ceil(D / d) so that d k >= D, at most D."""
    k = round((density if density is not None else 1 / math.sqrt(D)) * D)
    return min(D, max(1, k, -(-D // d)))


def distinct_rows(columns: int, D: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """(columns, k) int64: for each column k distinct rows of [0, D), uniformly drawn, sorted."""
    if 4 * k >= D:  # dense-ish: a random permutation per column
        return torch.rand(columns, D, generator=generator, dtype=torch.float64).argsort(dim=1)[:, :k].sort(dim=1)[0]
    rows = torch.randint(0, D, (columns, k), generator=generator)
    while True:  # redraw repeated rows until none is left (few rounds: a repeat has probability < k / D <= 1/4)
        rows = rows.sort(dim=1)[0]
        repeated = torch.zeros_like(rows, dtype=torch.bool)
        repeated[:, 1:] = rows[:, 1:] == rows[:, :-1]
        count = int(repeated.sum())
        if count == 0:
            return rows
        rows[repeated] = torch.randint(0, D, (count,), generator=generator)


def cover_empty_rows(rows: torch.Tensor, signs: torch.Tensor, D: int, generator: torch.Generator):
    """Move spare entries into the rows no column reached; returns the new (rows, signs).

    rows, signs: (d, k), rows sorted per column; needs d k >= D. A row with c entries has c - 1 spare
    ones: m spare slots (m = number of empty rows) are drawn uniformly, each donor row gives that many
    of its entries, chosen uniformly, and they move to the empty rows in random order. Every column
    keeps k distinct rows (an empty row is in no column yet) and its signs, so column norms and
    E[P^T P] = I are unchanged, and no donor row becomes empty. O(nnz) light passes, no sort of all entries.
    """
    flat = rows.reshape(-1)
    counts = torch.bincount(flat, minlength=D)
    empty = (counts == 0).nonzero().flatten()
    m = empty.numel()
    if m == 0:
        return rows, signs
    spare = (counts - 1).clamp_(min=0)
    total = int(spare.sum())
    assert total >= m, f"cannot cover {m} empty rows with {total} spare entries (needs d k >= D)"
    slots = distinct_rows(1, total, m, generator)[0]  # (m,) distinct spare slots
    take = torch.bincount(torch.searchsorted(spare.cumsum(0), slots, right=True), minlength=D)  # entries each row gives
    candidates = (take[flat] > 0).nonzero().flatten()  # the entries of donor rows
    candidates = candidates[torch.randperm(candidates.numel(), generator=generator)]
    candidates = candidates[torch.sort(flat[candidates], stable=True)[1]]  # grouped by row, random order inside
    donor = flat[candidates]
    rank = torch.arange(donor.numel()) - torch.searchsorted(donor, donor)  # position within the row's group
    chosen = candidates[rank < take[donor]]  # (m,)
    flat = flat.clone()
    flat[chosen] = empty[torch.randperm(m, generator=generator)]
    rows, signs = flat.view_as(rows), signs.clone()
    columns = torch.unique(chosen // rows.shape[1])
    rows[columns], order = rows[columns].sort(dim=1)
    signs[columns] = signs[columns].gather(1, order)
    return rows, signs


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, values, size, check_invariants=False)


class SparseProjector(Projector):
    """Very sparse P (D x d): column j has k distinct random rows, each of value +-1/sqrt(k).

    k = round(density * D), density 1/sqrt(D) by default (k ~ sqrt(D), entries ~ +-D^(-1/4)), at least
    ceil(D / d). Scale: unit columns and independent signs, so E[P^T P] = I. Coverage: every column has
    k >= 1 entries; rows no column reached (probability ~ (1 - k/D)^d each) get a spare entry moved in
    from a row with several (``cover_empty_rows``), so every row is nonzero too. Drawn on the CPU per
    block of columns (peak memory O(nnz), nnz = d k, never D d); stored as CSR of P (forward) and of P^T
    (backward), int32 indices when they fit: ~16 bytes per nonzero, O(nnz) time per call.
    Reference trap fixed: it drew ~d sqrt(D) grid positions with replacement (repeats summed, columns
    and rows could be empty).
    """

    linear = True

    def __init__(self, config: SparseConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        D, d = self.D, self.d
        self.k = k = nonzeros_per_column(D, d, config.density)
        rows, signs = torch.empty(d, k, dtype=torch.long), torch.empty(d, k)
        block = max(1, BLOCK_NUMBERS // (D if 4 * k >= D else k))  # columns per generator block
        blocks = range(0, d, block)
        for b, lo in enumerate(blocks):
            hi = min(lo + block, d)
            generator = self.generator(b)
            rows[lo:hi] = distinct_rows(hi - lo, D, k, generator)
            signs[lo:hi] = torch.randint(0, 2, (hi - lo, k), generator=generator) * 2.0 - 1.0
        rows, signs = cover_empty_rows(rows, signs, D, self.generator(len(blocks)))
        rows, values = rows.reshape(-1), signs.reshape(-1).mul_(1 / math.sqrt(k))  # (nnz,)
        index = torch.int32 if max(D, d * k) < 2**31 else torch.long
        # P^T in CSR: its row j is column j of P
        self.register_buffer("t_crow", torch.arange(0, d * k + 1, k, dtype=index), persistent=False)
        self.register_buffer("t_col", rows.to(index), persistent=False)
        self.register_buffer("t_values", values, persistent=False)
        # P in CSR: the entries sorted by row (stable: columns ascending within a row)
        order = torch.sort(rows.to(index), stable=True)[1]
        crow = torch.zeros(D + 1, dtype=torch.long)
        crow[1:] = torch.bincount(rows, minlength=D).cumsum(0)
        self.register_buffer("crow", crow.to(index), persistent=False)
        self.register_buffer("col", (order // k).to(index), persistent=False)
        self.register_buffer("values", values[order], persistent=False)

    @property
    def nnz(self) -> int:
        return self.d * self.k

    def matrix(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """P as a sparse CSR (D, d) tensor."""
        return _csr(self.crow, self.col, self.values.to(dtype), (self.D, self.d))

    def matrix_t(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """P^T as a sparse CSR (d, D) tensor."""
        return _csr(self.t_crow, self.t_col, self.t_values.to(dtype), (self.d, self.D))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        return _SparseMatvec.apply(w, self)


class _SparseMatvec(torch.autograd.Function):
    """y = P w and grad_w = P^T g, both CSR matvecs (torch's own sparse backward transposes P on every call)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, projector: SparseProjector) -> torch.Tensor:
        ctx.projector = projector
        return projector.matrix(w.dtype) @ w  # (D,)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        return ctx.projector.matrix_t(g.dtype) @ g.contiguous(), None  # (d,)
