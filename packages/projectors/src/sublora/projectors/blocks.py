"""Random blocks on disjoint random streams of one seed: the parts that film and nola assemble.

A projector made of several random parts (film's block on S, nola's one basis
per tensor) draws each part from its own range of random streams of the
projector's seed, so no two parts share a matrix (the A/B extension's
weight-tying trap) and nothing needs storing. ``streams`` says how many
streams a part uses; the next part starts after them.
"""

from __future__ import annotations

import torch

from sublora.core.layout import ParamLayout
from sublora.projectors.configs.dense import DenseConfig
from sublora.projectors.configs.fastfood import FastfoodConfig
from sublora.projectors.dense import DenseProjector
from sublora.projectors.fastfood import FastfoodProjector


class _OnStreams:
    """Shifts ``generator(offset)`` to stream ``self.stream + offset`` of the seed."""

    stream: int

    def generator(self, offset: int = 0) -> torch.Generator:
        return super().generator(self.stream + offset)  # type: ignore[misc]


class DenseBlock(_OnStreams, DenseProjector):
    """The dense Gaussian projector (entries N(0, 1/D)) on streams ``stream``, ``stream + 1``, ..."""

    def __init__(self, config: DenseConfig, layout: ParamLayout, d: int, seed: int, stream: int):
        self.stream = stream  # set before DenseProjector.__init__, which may draw the cached matrix
        super().__init__(config, layout, d, seed)

    @property
    def streams(self) -> int:
        return -(-self.D // self.block_rows)


class FastfoodBlock(_OnStreams, FastfoodProjector):
    """The Fastfood projector (Gaussian-like rows of norm ~ chi / sqrt(D), O(D) memory) on streams ``stream`` + 0..4."""

    streams = 5  # fastfood draws from offsets 1 to 4

    def __init__(self, layout: ParamLayout, d: int, seed: int, stream: int):
        self.stream = stream
        super().__init__(FastfoodConfig(), layout, d, seed)


def random_block(matrix: str, dense: DenseConfig, layout: ParamLayout, d: int, seed: int, stream: int):
    """A (layout.D x d) random block of the given kind ('dense' or 'fastfood'), E[P^T P] = I."""
    if matrix == "fastfood":
        return FastfoodBlock(layout, d, seed, stream)
    return DenseBlock(dense, layout, d, seed, stream)
