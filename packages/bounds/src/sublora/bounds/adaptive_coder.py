"""Adaptive arithmetic coding: a model learned while coding, so no symbol counts are stored.

Before symbol i the model gives symbol s the probability

    (count_s + a) / (i + a * alphabet_size)

where count_s counts s among symbols 0..i-1 and a is ``prior`` (0.5: the
Krichevsky-Trofimov estimator). The code length is about
d * H(p_hat) + (alphabet_size - 1) / 2 * log2(d) bits, against the
alphabet_size * ceil(log2(d + 1)) bits that the ``arithmetic`` coder pays for
its count header.

Payload layout: the shortest bit string whose value, followed by zero bits,
lies in the range coder's final interval, zero-padded to a whole byte (MSB
first). It never ends in a zero byte, and an empty payload is valid (the
sequence whose interval contains 0). There is no header: ``length`` and
``alphabet_size`` come from the run's config.

What ``decode`` can detect: the payload carries no redundancy, so almost every
byte string is the code of some sequence, and a payload cut or flipped inside
its data usually decodes, silently, to another sequence. ``decode`` rejects
every payload that is not exactly ``encode`` of what it decodes to (a trailing
zero byte, a longer-than-shortest termination, bytes for an empty sequence,
most appended bytes, about half of the payloads written under another prior);
the container's lengths and CRC32 are what catch truncation and bit flips in a
file.

Encoder and decoder agree bit for bit: both hand ``constriction`` the same
unnormalized weights ``count_s + a``, each one float64 addition of an exact
integer and ``a`` (numpy on the encoder side, the same IEEE addition symbol by
symbol on the decoder side); ``constriction`` normalizes and quantizes them to
fixed point identically on both sides (``perfect=False``, for which lazy and
eager models have the same semantics).
"""

from __future__ import annotations

from typing import ClassVar

import constriction
import numpy as np

from sublora.core.coder import Coder
from sublora.core.errors import VerificationError

_ROWS_ELEMENTS = 1 << 20  # weights per encoder chunk: bounds memory at 8 MiB for any alphabet
_HINT = "The payload is truncated or corrupt; recompress the model from its checkpoint."


def check_symbols(symbols: np.ndarray, alphabet_size: int) -> np.ndarray:
    """Flatten to int64; raise ValueError unless every symbol lies in [0, alphabet_size)."""
    if alphabet_size < 1:
        raise ValueError(f"alphabet_size must be >= 1; got {alphabet_size}.")
    symbols = np.asarray(symbols).ravel()
    if symbols.size and not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError(f"symbols must be integers; got dtype {symbols.dtype}.")
    if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
        raise ValueError(f"symbols must lie in [0, {alphabet_size}); got [{symbols.min()}, {symbols.max()}].")
    return symbols.astype(np.int64)


def shortest_point(words: np.ndarray, position: int, lower: int, range_: int) -> bytes:
    """The fewest bytes that decode like ``words``: a point of the final interval, zeros implied.

    ``words`` is the sealed output of a ``RangeEncoder`` and ``(position, (lower, range_))``
    its ``pos()``: the 64-bit state window covers words ``position`` and ``position + 1``,
    so the final interval is [A, A + range_) with A = lower (mod 2**64) and the sealed
    value inside it. The decoder reads missing words as zeros, so any point of the
    interval written without its trailing zero bits decodes to the same symbols.
    """
    stripped = words.astype(">u4").tobytes().rstrip(b"\0")  # always valid: same value
    n_words = position + 2
    if not position + 1 <= len(words) <= n_words:  # not the layout this relies on: keep the sealed value
        return stripped
    total = 32 * n_words  # bits
    value = int.from_bytes(words.astype(">u4").tobytes(), "big") << (32 * (n_words - len(words)))
    low = value - ((value - lower) % (1 << 64))
    high = low + range_ - 1  # inclusive
    if not 0 <= low <= value <= high < 1 << total:  # the interval lies in [0, 1): anything else is not this layout
        return stripped
    j = (low ^ high).bit_length() - 1  # highest bit where low and high differ (-1: equal)
    if low == 0 or j < 0 or low % (1 << (j + 1)) == 0:
        point = low  # low itself has the most trailing zeros
    else:
        point = (high >> j) << j  # common prefix, then a 1, then zeros: the most trailing zeros
    if point == 0:
        return b""
    bits = total - ((point & -point).bit_length() - 1)  # drop the trailing zeros
    nbytes = (bits + 7) // 8
    shortest = (point >> (total - 8 * nbytes)).to_bytes(nbytes, "big")
    return shortest if len(shortest) <= len(stripped) else stripped


class AdaptiveCoder(Coder):
    """Range coder (``constriction``) under the add-``prior`` estimator, updated after every symbol."""

    #: The payload is a bit string whose trailing zero bits are implied, and it never ends in a
    #: zero byte; the ``shortest`` coder uses this to share a byte with its flag.
    implicit_trailing_zeros: ClassVar[bool] = True

    @property
    def prior(self) -> float:
        return float(getattr(self.config, "prior", 0.5))

    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        symbols = check_symbols(symbols, alphabet_size)
        if symbols.size == 0 or alphabet_size == 1:
            return b""  # nothing to say: length and alphabet determine the sequence
        family = constriction.stream.model.Categorical(perfect=False)
        encoder = constriction.stream.queue.RangeEncoder()
        counts = np.zeros(alphabet_size, dtype=np.int64)  # (K,) occurrences before the chunk
        rows = max(1, _ROWS_ELEMENTS // alphabet_size)
        for start in range(0, symbols.size, rows):
            chunk = symbols[start : start + rows]  # (m,)
            onehot = np.zeros((chunk.size, alphabet_size), dtype=np.int64)  # (m, K)
            onehot[np.arange(chunk.size), chunk] = 1
            before = counts + np.cumsum(onehot, axis=0) - onehot  # (m, K) counts before each symbol
            weights = before.astype(np.float64) + self.prior  # (m, K) unnormalized probabilities
            encoder.encode(chunk.astype(np.int32), family, weights)
            counts += onehot.sum(axis=0)
        position, (lower, range_) = encoder.pos()
        return shortest_point(np.asarray(encoder.get_compressed(), dtype=np.uint32), position, lower, range_)

    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        if alphabet_size < 1:
            raise ValueError(f"alphabet_size must be >= 1; got {alphabet_size}.")
        if length == 0 or alphabet_size == 1:
            if payload:
                raise VerificationError(
                    f"Adaptive payload corrupt: {len(payload)} bytes where the sequence needs none.", hint=_HINT
                )
            return np.zeros(length, dtype=np.int64)
        if payload.endswith(b"\0"):
            raise VerificationError("Adaptive payload corrupt: it ends in a zero byte, which the coder never writes.",
                                    hint=_HINT)
        padded = payload + b"\0" * (-len(payload) % 4)
        words = np.frombuffer(padded, dtype=">u4").astype(np.uint32)  # (ceil(bytes / 4),)
        decoder = constriction.stream.queue.RangeDecoder(words)
        categorical = constriction.stream.model.Categorical
        prior = self.prior
        counts = [0] * alphabet_size
        weights = np.full(alphabet_size, 0.0 + prior)  # (K,) == count + prior, as the encoder builds it
        out = np.empty(length, dtype=np.int64)
        try:
            for i in range(length):
                s = decoder.decode(categorical(weights, perfect=False))
                out[i] = s
                counts[s] += 1
                weights[s] = counts[s] + prior  # the same float64 addition as the encoder's
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt payload
            raise VerificationError(f"Adaptive payload corrupt: range decoding failed ({exc}).", hint=_HINT) from exc
        # Every bit string decodes to some sequence: accept only the exact code of what it decoded to.
        if self.encode(out, alphabet_size) != payload:
            raise VerificationError(
                f"Adaptive payload corrupt: its {len(payload)} bytes are not the code of the {length} symbols "
                "they decode to (extended, altered, or written by another coder or prior).",
                hint=_HINT,
            )
        return out
