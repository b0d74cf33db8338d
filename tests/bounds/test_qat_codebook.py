"""What quantization-aware fine-tuning does to a quantizer's codebook: trains it (and says so in its record),
or keeps it exactly when the quantizer declares ``fixed_codebook``.

A linear stand-in for the network (theta = P w, squared loss to a target) keeps this fast: QAT only
needs ``model.projector``, ``theta0``, ``loss`` and a batch source.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from sublora.bounds.qat import fine_tune
from sublora.core.quantizer import Quantizer, QuantizerConfig, nearest


class _Projector(torch.nn.Module):
    def __init__(self, D: int, d: int):
        super().__init__()
        self.register_buffer("P", torch.randn(D, d, generator=torch.Generator().manual_seed(0)) / D**0.5)

    def forward(self, w):
        return self.P @ w  # (D,)


class _Model(torch.nn.Module):
    def __init__(self, D: int = 48, d: int = 64):
        super().__init__()
        self.projector = _Projector(D, d)
        self.theta0 = torch.zeros(D)
        self.target = torch.randn(D, generator=torch.Generator().manual_seed(1))

    def loss(self, x, y, theta):
        return ((theta - self.target) ** 2).mean()


class _Batches:
    def get_batch(self, split, batch_size, block_size, generator):
        return torch.zeros(1), torch.zeros(1)


class _Grid(Quantizer):
    def fit(self, values, seed):
        bound = float(np.abs(values).max())
        return np.linspace(-bound, bound, self.config.levels)


class GridConfig(QuantizerConfig):
    implementation: ClassVar[str] = ""


class FixedGridConfig(QuantizerConfig):
    implementation: ClassVar[str] = ""
    fixed_codebook: ClassVar[bool] = True


def _qat(config: QuantizerConfig):
    w = torch.randn(64, generator=torch.Generator().manual_seed(2)) * 0.5
    plain = {"w": _Grid(config).quantize(w.double().numpy(), seed=0)}
    result = fine_tune(_Model(), _Batches(), {"w": w}, plain, steps=60, lr=0.05, batch_size=1, block_size=1, seed=0)
    return plain["w"], result


def test_a_fixed_codebook_is_kept_exactly_and_only_the_values_move():
    plain, result = _qat(FixedGridConfig(levels=11))
    after = result.quantized["w"]
    assert plain.fixed_codebook and after.fixed_codebook
    assert np.array_equal(after.codebook.view(np.uint16), plain.codebook.view(np.uint16))  # every entry, same bits
    assert not np.array_equal(after.symbols, plain.symbols)  # QAT moved values between grid points
    assert result.losses[-1] < result.losses[0]
    assert result.codebooks["w"] == {"trained": False, "changed": False, "levels_before": 11, "levels_after": 11}


def test_a_trained_codebook_is_recorded_as_changed():
    """The issue's case: an evenly spaced 11-level grid comes back uneven (and maybe smaller), and the record says so."""
    plain, result = _qat(GridConfig(levels=11))
    after = result.quantized["w"]
    book = after.codebook.astype(np.float64)
    assert not after.fixed_codebook
    assert not np.allclose(np.diff(book), np.diff(book)[0], rtol=1e-2)  # no longer evenly spaced
    record = result.codebooks["w"]
    assert record["trained"] and record["changed"] and record["levels_before"] == 11
    assert record["levels_after"] == after.codebook.size <= 11
    assert np.array_equal(after.symbols, nearest(after.values.astype(np.float64), book))


def test_the_core_quantizer_passes_its_declaration_on():
    assert _Grid(FixedGridConfig()).quantize(np.linspace(-1, 1, 50)).fixed_codebook
    assert not _Grid(GridConfig()).quantize(np.linspace(-1, 1, 50)).fixed_codebook
