"""Very sparse random projector (Achlioptas 2003; Li, Hastie, Church 2006), one stratified entry per row band."""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.projectors.configs.sparse import SparseConfig

#: entries handled at once in forward and backward: bounds the temporaries (~16 bytes each) to ~64 MB
CHUNK_ENTRIES = 1 << 22


def nonzeros_per_column(D: int, d: int, density: float | None) -> int:
    """k = round(density * D) (density 1/sqrt(D) by default), at least ceil(D / d) so that d k >= D, at most D."""
    k = round((density if density is not None else 1 / math.sqrt(D)) * D)
    return min(D, max(1, k, -(-D // d)))


def band_starts(D: int, k: int) -> torch.Tensor:
    """(k + 1,) int64: band s holds rows [starts[s], starts[s + 1]), floor(D/k) or ceil(D/k) rows each."""
    return torch.arange(k + 1, dtype=torch.long) * D // k


def balanced_offsets(d: int, m: int, generator: torch.Generator) -> torch.Tensor:
    """(d,) offsets in [0, m): each value taken by floor(d/m) or ceil(d/m) columns, uniformly at random (needs d >= m)."""
    return torch.randperm(d, generator=generator) % m


class SparseProjector(Projector):
    """Very sparse P (D x d): column j has k entries +-1/sqrt(k), one in each of k bands of rows.

    k = round(density * D), density 1/sqrt(D) by default (k ~ sqrt(D), entries ~ +-D^(-1/4)), at least
    ceil(D / d). The rows are cut into k consecutive bands of floor(D/k) or ceil(D/k) rows; in every
    band, the d columns pick their row by a random balanced assignment (each row of the band is picked
    by floor or ceil of d / band size columns, so every row is nonzero: d >= band size because
    d k >= D), with an independent random sign each. So each column has k distinct rows (one per band),
    every row is reached, and E[P^T P] = I (unit columns, independent signs).
    Stored: one index per nonzero, 2 * row + (1 if the sign is negative), int32 while 2 D < 2^31:
    4 bytes per nonzero, O(d k) memory, never D d, no second copy for P^T. Forward scatter-adds w
    into 2 D slots (y = even slots - odd slots), backward gathers from [g, -g] interleaved; both run
    in chunks of ``CHUNK_ENTRIES`` entries (bounded temporaries; a chunk's rows are a contiguous
    range, so memory access stays local): O(d k) time. Drawn on the CPU.
    Reference trap fixed: it drew ~d sqrt(D) grid positions with replacement (repeats summed, columns
    and rows could be empty).
    """

    linear = True

    def __init__(self, config: SparseConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        D, d = self.D, self.d
        self.k = k = nonzeros_per_column(D, d, config.density)
        starts = band_starts(D, k)
        dtype = torch.int32 if 2 * D < 2**31 else torch.long
        index = torch.empty(k, d, dtype=dtype)  # index[s, j] = 2 * (row of column j in band s) + (sign < 0)
        rows_gen, signs_gen = self.generator(0), self.generator(1)
        for s, (lo, hi) in enumerate(zip(starts[:-1].tolist(), starts[1:].tolist())):
            rows = lo + balanced_offsets(d, hi - lo, rows_gen)
            negative = torch.randint(0, 2, (d,), generator=signs_gen)
            index[s] = 2 * rows + negative
        self.register_buffer("index", index, persistent=False)
        self.bands_per_chunk = max(1, CHUNK_ENTRIES // d)

    @property
    def nnz(self) -> int:
        return self.d * self.k

    def chunks(self):
        """Flat index chunks of consecutive bands: (b * d,) each, b = bands_per_chunk (fewer at the end)."""
        for lo in range(0, self.k, self.bands_per_chunk):
            yield self.index[lo : lo + self.bands_per_chunk].flatten()

    def coo(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, columns, values) of every nonzero of P, band by band (for tests and inspection)."""
        index = self.index.long()
        cols = torch.arange(self.d).expand_as(index)
        values = (1 - 2 * (index % 2)).float() / math.sqrt(self.k)
        return (index // 2).flatten(), cols.flatten(), values.flatten()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        return _SparseMatvec.apply(w, self)


class _SparseMatvec(torch.autograd.Function):
    """y = P w by scatter-add and grad_w = P^T g by gather, chunk by chunk of bands (no copy of P^T)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, projector: SparseProjector) -> torch.Tensor:
        ctx.projector = projector
        slots = w.new_zeros(2 * projector.D)  # slot 2 r: + entries of row r, slot 2 r + 1: - entries
        for index in projector.chunks():
            slots.index_add_(0, index, w.repeat(index.numel() // projector.d))
        slots = slots.view(projector.D, 2)
        return (slots[:, 0] - slots[:, 1]).mul_(1 / math.sqrt(projector.k))  # (D,)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        projector = ctx.projector
        signed = torch.stack([g, -g], dim=1).flatten()  # (2 D,) the slots' gradients
        grad = g.new_zeros(projector.d)
        for index in projector.chunks():
            grad += signed.index_select(0, index).view(-1, projector.d).sum(dim=0)  # (d,)
        return grad.mul_(1 / math.sqrt(projector.k)), None
