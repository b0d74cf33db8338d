"""The hashing projector: one random signed entry per row (D >= d) or per column (D < d).

D >= d: output i reads column h(i) with sign s_i, (P w)_i = s_i sqrt(d/D) w[h(i)].
h is balanced: position k in [0, D) gets column k mod d, then rows and columns
are randomly permuted. So every column is hit floor(D/d) or ceil(D/d) times and
E[P^T P] = I exactly (each column's expected hit count is D/d).

D < d: too few rows for every column to own one, so the roles swap (a count
sketch): column j adds s_j w[j] to row g(j), g balanced the same way, with
scale 1. Every row and every column is still used and E||P w||^2 = ||w||^2.

Both cases are one scatter-add of max(D, d) signed entries: O(max(D, d)) memory.
"""

from __future__ import annotations

import math

import torch

from sublora.core.layout import ParamLayout
from sublora.core.projector import Projector
from sublora_example.configs import HashingConfig


class HashingProjector(Projector):
    linear = True

    def __init__(self, config: HashingConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        D, d = self.D, self.d
        k = torch.arange(max(D, d))
        rows = torch.randperm(D, generator=self.generator(1))[k % D]
        cols = torch.randperm(d, generator=self.generator(2))[k % d]
        signs = torch.randint(0, 2, (k.numel(),), generator=self.generator(3)) * 2.0 - 1.0
        scale = math.sqrt(d / D) if D >= d else 1.0
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        self.register_buffer("values", signs * scale, persistent=False)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        entries = self.values.to(w.dtype) * w[self.cols]  # (max(D, d),)
        return torch.zeros(self.D, dtype=w.dtype, device=w.device).index_add(0, self.rows, entries)  # (D,)
