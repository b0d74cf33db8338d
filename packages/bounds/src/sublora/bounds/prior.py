"""The complexity a hypothesis pays, from explicit settings (docs/bounds.md section 3).

The prior is P(h) = 2^-(L + 2 log2 L) over compressed files of L bits; choices made after
seeing data that the file does not record are paid as extra bits by a union bound:
``hyperparameters`` (hyper_bits, asserted by the user) and ``alpha_grid`` (log2 |A|).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sublora.core.bound import Complexity
from sublora.core.errors import BoundError


def complexity(code_bits: int, *, hyper_bits: float, alphas: Sequence[float],
               extra: Mapping[str, float] | None = None) -> Complexity:
    """Bits paid by a compressed hypothesis of ``code_bits`` bits (8 x its bytes).

    ``hyper_bits``: a union bound over the 2^hyper_bits configurations tried on this data (sublora's
    default is 7); ``alphas``: the smoothing grid every estimator picks its best alpha from
    (log2 |A| bits); ``extra``: any other searched choice, name -> bits, itemized as well.
    """
    if int(code_bits) != code_bits or code_bits < 1:
        raise BoundError(f"code_bits must be a whole number of bits >= 1; got {code_bits}.")
    if not hyper_bits >= 0:
        raise BoundError(f"hyper_bits must be >= 0; got {hyper_bits}.")
    grid = {float(a) for a in alphas}
    if not grid or not all(0.0 < a <= 1.0 for a in grid):
        raise BoundError(f"alphas must be a non-empty grid of values in (0, 1]; got {list(alphas)}.")
    breakdown = {"hyperparameters": hyper_bits, "alpha_grid": math.log2(len(grid))}
    for name, bits in (extra or {}).items():
        if name in breakdown or not bits >= 0:
            raise BoundError(f"extra bits {name!r}: {bits} (names must be new, bits >= 0).")
        breakdown[name] = bits
    return Complexity(code_bits=int(code_bits), extra_bits=sum(breakdown.values()), extra_breakdown=breakdown)
