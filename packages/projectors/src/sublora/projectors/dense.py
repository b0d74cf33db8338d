"""Dense Gaussian projector: P = G / sqrt(D), G_ij ~ N(0, 1), so E[P^T P] = I.

P is never stored when it is large. Its rows are cut into fixed generator
blocks of ``block_rows`` rows (a function of d only); block b is drawn on the
CPU from ``self.generator(b)``. A chunk is a run of whole blocks, so P does not
depend on the chunk size, nor on whether it is cached. The backward pass
regenerates the same chunks to compute P^T g, so memory stays O(chunk * d).
"""

from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora.projectors.configs.dense import DenseConfig

#: numbers drawn per generator block (at least one row): fixes P for a given (seed, D, d)
BLOCK_NUMBERS = 1 << 16
#: default bytes of one generated chunk
CHUNK_BYTES = 64 << 20


class DenseProjector(Projector):
    linear = True

    def __init__(self, config: DenseConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        self.scale = 1.0 / math.sqrt(self.D)
        self.block_rows = max(1, BLOCK_NUMBERS // self.d)
        rows = config.chunk_size or max(1, CHUNK_BYTES // (4 * self.d))
        self.chunk_rows = max(1, rows // self.block_rows) * self.block_rows
        matrix = None
        if self.D * self.d * 4 <= config.cache_mb * 2**20:
            matrix = self.rows(0, self.D)  # (D, d)
        self.register_buffer("matrix", matrix, persistent=False)

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) of P on the CPU, float32; start must begin a generator block."""
        assert start % self.block_rows == 0, "a chunk must start at a generator block"
        out = torch.empty(stop - start, self.d)  # (rows, d)
        for lo in range(start, stop, self.block_rows):
            hi = min(lo + self.block_rows, self.D)  # blocks are always drawn whole
            block = torch.randn(hi - lo, self.d, generator=self.generator(lo // self.block_rows))
            out[lo - start : hi - start] = block[: stop - lo]
        return out.mul_(self.scale)

    def chunks(self):
        """(start, stop, rows of P on the CPU) for every chunk of rows."""
        for start in range(0, self.D, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.D)
            yield start, stop, self.rows(start, stop)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        if self.matrix is not None:
            return self.matrix.to(w.dtype) @ w  # (D,)
        return _ChunkedMatvec.apply(w, self)


class _ChunkedMatvec(torch.autograd.Function):
    """y = P w and grad_w = P^T g, both regenerating P chunk by chunk."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, projector: DenseProjector) -> torch.Tensor:
        ctx.projector = projector
        out = torch.empty(projector.D, dtype=w.dtype, device=w.device)
        for start, stop, rows in projector.chunks():
            torch.mv(rows.to(w), w, out=out[start:stop])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        projector = ctx.projector
        grad = torch.zeros(projector.d, dtype=g.dtype, device=g.device)
        for start, stop, rows in projector.chunks():
            grad.addmv_(rows.to(g).T, g[start:stop])
        return grad, None
