"""NOLA projector (Koohpayegani et al., arXiv 2310.02556): LoRA tensors as mixes of random bases.

Every trainable tensor t of the layout (lora_A and lora_B of each LoRA module,
and any misc tensor, e.g. a trainable ln_f) gets its own k_t random basis
tensors B_{t,1..k_t} of its shape and k_t coefficients of w:

    theta_t = theta0_t + sum_i w_{c_t + i} B_{t,i},

so a module's A moves by sum_i a_i A_i and its B by sum_j b_j B_j, as in NOLA
(theta0 is the LoRA init: A random, B zero, so the LoRA product starts at 0).
P is block diagonal: w is cut into consecutive runs of k_t coordinates, one
run per tensor, in layout order (lora_A and lora_B of a module are
neighbours, each with its own run and its own basis).

Split of d (``nola_plan``): with S tensors, k_t = d // S, and the first d % S
tensors (layout order) take one more, so all d coordinates are used and
k_t >= 1. For GPT-2 with LoRA only, S = 2 * (LoRA modules) and k = d // S as
in NOLA (same k for A and B). If d < S there are not enough coordinates for
one basis per tensor: the tensors are then cut into d consecutive groups
(sizes differing by at most one) and each group is one target with k = 1,
its basis a random vector over all the group's coordinates (tensors in a
group share their coefficient). Every row and every column of P is nonzero.

Basis and scale: the basis of target t, flattened as the columns of an
(N_t x k_t) matrix, is the dense projector on that target (entries N(0, 1/N_t),
N_t its number of coordinates), drawn from its own random streams of the
seed (targets take consecutive, disjoint stream ranges from 1 on), so no two
tensors share a basis (no weight tying, the trap of the A/B extension) and
nothing is stored per seed. NOLA's code draws uniform(-1, 1) / sqrt(k); here
Gaussian entries of variance 1/N_t give every column E||P e_j||^2 = 1, so
E||P w||^2 = ||w||^2 like every sublora projector (NOLA's scale would be
N_t / (3 k) instead) and the dense generator is reused.

Memory: the bases hold sum_t N_t k_t ~ D d / S numbers, O(k r (m + n)) per
module; they are cached when they fit in ``cache_mb`` together, else each is
regenerated in chunks in forward and backward. Time O(D d / S) per call.

``matrix='fastfood'``: the basis of target t is instead the k_t columns of a
Fastfood transform on its N_t coordinates (its own streams of the seed):
Gaussian-like basis tensors with the same scale, O(N_t) memory and
O(N_t log k_t) time, so NOLA runs at D = 1e7 where dense bases take minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sublora.core.layout import ParamLayout, ParamSlot
from sublora.core.projector import Projector
from sublora.projectors.configs.dense import DenseConfig
from sublora.projectors.configs.nola import NolaConfig
from sublora.projectors.blocks import random_block


@dataclass(frozen=True)
class Target:
    """Consecutive tensors moved by one basis: rows [start, stop) of theta, coefficients [col, col + k) of w."""

    slots: tuple[ParamSlot, ...]
    col: int
    k: int

    @property
    def start(self) -> int:
        return self.slots[0].offset

    @property
    def stop(self) -> int:
        return self.slots[-1].offset + self.slots[-1].numel


def nola_plan(layout: ParamLayout, d: int) -> list[Target]:
    """One target per tensor with k = d // S (+1 for the first d % S); if d < S, d groups of tensors with k = 1."""
    slots = layout.slots
    S = len(slots)
    T = min(S, d)
    targets, col = [], 0
    for t in range(T):
        k = d // T + (1 if t < d % T else 0)
        targets.append(Target(slots[t * S // T : (t + 1) * S // T], col, k))
        col += k
    return targets


class NolaProjector(Projector):
    linear = True

    def __init__(self, config: NolaConfig, layout: ParamLayout, d: int, seed: int):
        super().__init__(config, layout, d, seed)
        self.targets = nola_plan(layout, self.d)
        numbers = sum((t.stop - t.start) * t.k for t in self.targets)
        cache_mb = config.cache_mb if numbers * 4 <= config.cache_mb * 2**20 else 0.0  # all bases or none
        dense = DenseConfig(chunk_size=config.chunk_size, cache_mb=cache_mb)
        blocks, stream = [], 1
        for t in self.targets:
            sub = ParamLayout.from_named_shapes([(s.name, s.shape) for s in t.slots])
            blocks.append(random_block(config.matrix, dense, sub, t.k, self.seed, stream))
            stream += blocks[-1].streams  # disjoint streams: a distinct basis for every tensor
        self.blocks = nn.ModuleList(blocks)

    def basis(self, index: int) -> torch.Tensor:
        """The basis of target ``index``: (k, N) float32, row i = B_i flattened (reshape to the tensor's shape)."""
        block = self.blocks[index]
        if hasattr(block, "rows"):  # dense: draw the rows directly
            return block.rows(0, block.D).T  # (k, N)
        with torch.no_grad():
            return torch.stack([block(e) for e in torch.eye(block.d)])  # (k, N)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        assert w.shape == (self.d,), f"expected w of shape ({self.d},), got {tuple(w.shape)}"
        parts = [block(w[t.col : t.col + t.k]) for t, block in zip(self.targets, self.blocks)]  # (N_t,) each
        return torch.cat(parts)  # (D,)
