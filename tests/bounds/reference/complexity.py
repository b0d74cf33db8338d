"""Section 3 of docs/bounds.md: the bits paid for the hypothesis."""

from __future__ import annotations

import math


def total_bits(L: int, hyper_bits: float, n_alphas: int) -> float:
    """Section 1/3: C = L + 2 log2 L + hyper_bits + log2 |A| (the levels search costs nothing)."""
    return L + 2.0 * math.log2(L) + hyper_bits + math.log2(n_alphas)


def div_nats(C: float) -> float:
    """Section 1: div = C ln 2."""
    return C * math.log(2.0)
