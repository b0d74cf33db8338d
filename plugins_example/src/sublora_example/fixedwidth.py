"""A fixed-width coder: every symbol in ceil(log2 alphabet_size) bits, MSB first, no model.

Lossless and self-contained: the decoder needs only the length and the alphabet size, which
the run's config fixes. It is the baseline an entropy coder must beat: d log2(levels) bits.
"""

from __future__ import annotations

import numpy as np

from sublora.core.coder import Coder
from sublora.core.errors import VerificationError


def width(alphabet_size: int) -> int:
    """Bits per symbol: ceil(log2 alphabet_size); 0 for a one-symbol alphabet."""
    return (alphabet_size - 1).bit_length()


class FixedWidthCoder(Coder):
    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        symbols = np.asarray(symbols, dtype=np.int64).ravel()
        if alphabet_size < 1:
            raise ValueError(f"alphabet_size must be >= 1; got {alphabet_size}.")
        if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
            raise ValueError(f"symbols must lie in [0, {alphabet_size}); got [{symbols.min()}, {symbols.max()}].")
        shifts = np.arange(width(alphabet_size) - 1, -1, -1)
        bits = (symbols[:, None] >> shifts) & 1  # (n, width), most significant bit first
        return np.packbits(bits.astype(np.uint8).ravel()).tobytes()

    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        w = width(alphabet_size)
        if len(payload) != (length * w + 7) // 8:
            raise VerificationError(f"Fixed-width payload has {len(payload)} bytes; {length} symbols of {w} bits "
                                    f"need {(length * w + 7) // 8}.")
        bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))[: length * w].reshape(length, w)
        symbols = bits.astype(np.int64) @ (1 << np.arange(w - 1, -1, -1))  # (length,)
        if symbols.size and symbols.max() >= alphabet_size:
            raise VerificationError(f"Fixed-width payload decodes to symbol {symbols.max()}, outside the alphabet.")
        return symbols
