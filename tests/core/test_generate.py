"""Text generation: greedy = top-1, seeded sampling, context cropped to the block."""

from __future__ import annotations

import pytest
import torch

from sublora.core.generate import generate


class Bigram(torch.nn.Module):
    """A fixed bigram model with the subspace model's call signature: model(x, theta) -> logits."""

    def __init__(self, V=7, seed=0):
        super().__init__()
        self.table = torch.randn(V, V, generator=torch.Generator().manual_seed(seed)) * 3
        self.seen = []

    def flat_params(self):
        return None

    def forward(self, x, theta):
        self.seen.append(x.shape[1])
        return self.table[x]  # (B, T, V)


def test_greedy_follows_the_argmax_and_top1_equals_greedy():
    model = Bigram()
    out = generate(model, [3], 10, block_size=4, temperature=0)
    for prev, nxt in zip(out, out[1:]):
        assert nxt == int(model.table[prev].argmax())
    assert generate(model, [3], 10, block_size=4, temperature=1.0, top_k=1, seed=5) == out


def test_sampling_is_seeded_and_context_is_cropped():
    model = Bigram()
    a = generate(model, [1, 2], 30, block_size=4, seed=0)
    assert a == generate(model, [1, 2], 30, block_size=4, seed=0) and a[:2] == [1, 2] and len(a) == 32
    assert a != generate(model, [1, 2], 30, block_size=4, seed=1)
    assert max(model.seen) == 4  # never more than block_size tokens of context
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 3, block_size=4)
