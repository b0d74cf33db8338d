"""Fixed-width unsigned integers packed MSB-first into bytes."""

from __future__ import annotations

from sublora.core.errors import VerificationError


class BitWriter:
    """Append ``width``-bit unsigned integers; ``getvalue`` pads the last byte with zeros."""

    def __init__(self) -> None:
        self._acc = 0
        self._nbits = 0

    def write(self, value: int, width: int) -> None:
        assert width >= 0, "width must be non-negative"
        assert 0 <= value < (1 << width) or (width == 0 and value == 0), f"{value} does not fit in {width} bits"
        self._acc = (self._acc << width) | value
        self._nbits += width

    @property
    def bits(self) -> int:
        return self._nbits

    def getvalue(self) -> bytes:
        nbytes = (self._nbits + 7) // 8
        return (self._acc << (8 * nbytes - self._nbits)).to_bytes(nbytes, "big")


class BitReader:
    """Read back what a ``BitWriter`` wrote, in the same order and widths."""

    def __init__(self, data: bytes) -> None:
        self._acc = int.from_bytes(data, "big")
        self._total = 8 * len(data)
        self._pos = 0

    def read(self, width: int) -> int:
        if self._pos + width > self._total:
            raise VerificationError(f"Bit stream truncated: wanted {width} bits at bit {self._pos} of {self._total}.")
        self._pos += width
        return (self._acc >> (self._total - self._pos)) & ((1 << width) - 1)

    @property
    def position(self) -> int:
        return self._pos
