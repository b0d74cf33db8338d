"""Arithmetic (range) coding of quantized symbols with their empirical frequencies.

Payload layout (self-contained given ``length`` and ``alphabet_size``):

1. ``alphabet_size`` symbol counts, each ``ceil(log2(length + 1))`` bits, MSB first,
   zero-padded to a whole byte;
2. the range coder's compressed words, uint32 little-endian.

The coding model is ``Categorical(counts / length, perfect=False)`` built from the
same float64 array on both sides, so encoder and decoder agree bit for bit. When
only one symbol occurs, the counts already determine the sequence and no words
are written.
"""

from __future__ import annotations

import constriction
import numpy as np

from sublora.bounds.bitpack import BitReader, BitWriter
from sublora.core.coder import Coder
from sublora.core.errors import VerificationError


def count_width(length: int) -> int:
    """Bits per stored symbol count: ceil(log2(length + 1))."""
    return int(length).bit_length()  # == ceil(log2(length + 1)) for length >= 0


def entropy_bits(symbols: np.ndarray, alphabet_size: int) -> float:
    """d * H(p_hat) in bits: the ideal code length of the sequence under its own frequencies."""
    symbols = np.asarray(symbols).ravel()
    if symbols.size == 0:
        return 0.0
    counts = np.bincount(symbols, minlength=alphabet_size).astype(np.float64)
    counts = counts[counts > 0]
    return float(-(counts * np.log2(counts / symbols.size)).sum())


def _model(counts: np.ndarray):
    probabilities = counts.astype(np.float64) / float(counts.sum())
    return constriction.stream.model.Categorical(probabilities, perfect=False)


class ArithmeticCoder(Coder):
    """Range coder from ``constriction`` with the empirical symbol counts stored up front."""

    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        symbols = np.asarray(symbols).ravel()
        if alphabet_size < 1:
            raise ValueError(f"alphabet_size must be >= 1; got {alphabet_size}.")
        if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
            raise ValueError(f"symbols must lie in [0, {alphabet_size}); got [{symbols.min()}, {symbols.max()}].")
        counts = np.bincount(symbols.astype(np.int64), minlength=alphabet_size)
        writer = BitWriter()
        width = count_width(symbols.size)
        for c in counts:
            writer.write(int(c), width)
        header = writer.getvalue()
        if np.count_nonzero(counts) <= 1:
            return header
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(symbols.astype(np.int32), _model(counts))
        return header + encoder.get_compressed().astype("<u4").tobytes()

    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        width = count_width(length)
        header_bytes = (alphabet_size * width + 7) // 8
        if len(payload) < header_bytes:
            raise VerificationError(
                f"Coder payload truncated: {len(payload)} bytes, the symbol counts alone need {header_bytes}."
            )
        reader = BitReader(payload[:header_bytes])
        counts = np.array([reader.read(width) for _ in range(alphabet_size)], dtype=np.int64)
        if counts.sum() != length:
            raise VerificationError(f"Coder payload corrupt: symbol counts sum to {counts.sum()}, expected {length}.")
        body = payload[header_bytes:]
        if length == 0:
            return np.zeros(0, dtype=np.int64)
        if np.count_nonzero(counts) == 1:
            if body:
                raise VerificationError(f"Coder payload corrupt: {len(body)} unexpected bytes after the counts.")
            return np.full(length, int(np.argmax(counts)), dtype=np.int64)
        if len(body) % 4:
            raise VerificationError(f"Coder payload corrupt: {len(body)} data bytes are not whole 32-bit words.")
        words = np.frombuffer(body, dtype="<u4").astype(np.uint32)
        try:
            decoded = constriction.stream.queue.RangeDecoder(words).decode(_model(counts), length)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt payload
            raise VerificationError(f"Coder payload corrupt: range decoding failed ({exc}).") from exc
        decoded = np.asarray(decoded, dtype=np.int64)
        if decoded.max() >= alphabet_size or not np.array_equal(np.bincount(decoded, minlength=alphabet_size), counts):
            raise VerificationError("Coder payload corrupt: decoded symbols do not match the stored counts.")
        return decoded
