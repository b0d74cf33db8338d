"""The grid quantizer against the quantizer contract; its codebook is the grid, and QAT must keep it."""

import numpy as np

from sublora.core.registry import registry
from sublora.core.testing import check_quantizer_contract


def test_contract():
    check_quantizer_contract("grid")


def test_the_codebook_is_an_evenly_spaced_grid_declared_fixed():
    w = np.random.default_rng(0).standard_normal(1000) * 0.02
    q = registry("quantizer").config("grid", {"levels": 11}).build().quantize(w)
    book = q.codebook.astype(np.float64)
    assert book.size == 11 and book[0] == -book[-1] and book[5] == 0.0
    assert np.allclose(np.diff(book), np.diff(book)[0], rtol=2e-3)  # evenly spaced up to fp16 rounding
    assert q.fixed_codebook  # what quantization-aware fine-tuning reads
