"""Code with every candidate coder and keep the shortest; a flag in the payload names it.

Choosing after seeing the symbols is still one fixed code, fixed by the config
before any data is seen: the flag makes it decodable, so the bound pays for
the flag and nothing else.

Payload layout, with n candidates and f = ceil(log2 n) flag bits (0 for one
candidate): the flag (the candidate's index, MSB first) followed by that
candidate's payload, packed so that the flag fills the payload's zero padding
when there is room:

- a payload whose first h bits are followed by zero padding to a byte
  (``arithmetic``: its symbol counts, h = levels * ceil(log2(d + 1))):
  flag and those h bits in ceil((f + h) / 8) bytes, then the rest unchanged;
- a payload whose trailing zero bits are implied (``adaptive``, k meaningful
  bits, never ending in a zero byte): flag and the k bits, trailing zero bytes
  dropped: ceil((f + k) / 8) bytes (when k = 0, just the flag without its
  trailing zero bits, so flag 0 and an empty payload give an empty payload);
- any other coder: the flag zero-padded to a byte (h = 0 above), then its payload.

What the choice costs: the flag is f bits (1 for two candidates), and the file
pays it in whole bytes: zero bytes when the chosen payload has at least f
padding bits ((-h) mod 8 >= f, resp. (-k) mod 8 >= f), one byte otherwise. So
the payload is never longer than the shortest candidate alone plus one byte.

Decoding reads the flag from the first f bits (zeros if the payload is
empty), undoes that candidate's packing, and calls its decoder.
"""

from __future__ import annotations

import numpy as np

from sublora.bounds.bitpack import BitWriter
from sublora.bounds.coders import ArithmeticCoder, count_width
from sublora.core.coder import Coder
from sublora.core.errors import VerificationError

_HINT = "The payload is truncated or corrupt; recompress the model from its checkpoint."


def header_bits(coder: Coder, length: int, alphabet_size: int) -> int:
    """Bits at the front of ``coder``'s payload that are followed by zero padding to a byte (0: none known)."""
    if type(coder) is ArithmeticCoder:  # its documented layout: counts first, zero-padded (see coders.py)
        return alphabet_size * count_width(length)
    return 0


def implicit_trailing_zeros(coder: Coder) -> bool:
    """Whether ``coder`` reads missing trailing bits as zeros and never ends its payload in a zero byte."""
    return bool(getattr(coder, "implicit_trailing_zeros", False))


class ShortestCoder(Coder):
    """Encode with each candidate, keep the shortest packed payload (ties: the earlier candidate)."""

    def __init__(self, config):
        super().__init__(config)
        self.candidates: list[str] = list(config.candidates)
        self.coders: list[Coder] = [c.build() for c in config.candidate_configs()]
        self.flag_bits = (len(self.coders) - 1).bit_length()  # ceil(log2 n); 0 for one candidate

    def check_run_data(self, run_data: dict | None) -> dict | None:
        """Every candidate's check (any candidate may be chosen): {candidate: record} of those that check something."""
        checks = {name: coder.check_run_data(run_data) for name, coder in zip(self.candidates, self.coders)}
        return {name: record for name, record in checks.items() if record is not None} or None

    def encode(self, symbols: np.ndarray, alphabet_size: int) -> bytes:
        symbols = np.asarray(symbols).ravel()
        packed = [self.pack(i, coder.encode(symbols, alphabet_size), symbols.size, alphabet_size)
                  for i, coder in enumerate(self.coders)]
        best = min(range(len(packed)), key=lambda i: (len(packed[i]), i))
        return packed[best]

    def pack(self, index: int, payload: bytes, length: int, alphabet_size: int) -> bytes:
        """Candidate ``index``'s payload with the flag in front (layout in the module docstring)."""
        coder, f = self.coders[index], self.flag_bits
        writer = BitWriter()
        writer.write(index, f)
        if implicit_trailing_zeros(coder):
            writer.write(int.from_bytes(payload, "big"), 8 * len(payload))
            return writer.getvalue().rstrip(b"\0")
        h = header_bits(coder, length, alphabet_size)
        hb = (h + 7) // 8  # bytes of the candidate's own header
        head = int.from_bytes(payload[:hb], "big")
        if len(payload) < hb or head & ((1 << (8 * hb - h)) - 1):
            raise RuntimeError(f"Coder {self.candidates[index]!r} did not write {h} header bits padded with zeros.")
        writer.write(head >> (8 * hb - h), h)
        return writer.getvalue() + payload[hb:]

    def decode(self, payload: bytes, length: int, alphabet_size: int) -> np.ndarray:
        f, total = self.flag_bits, 8 * len(payload)
        value = int.from_bytes(payload, "big")
        index = value >> (total - f) if total >= f else value << (f - total)  # missing bits read as zeros
        if index >= len(self.coders):
            raise VerificationError(
                f"Shortest-coder payload corrupt: flag {index} names no candidate (there are {len(self.coders)}).",
                hint=_HINT,
            )
        coder, name = self.coders[index], self.candidates[index]
        if implicit_trailing_zeros(coder):
            if payload.endswith(b"\0"):
                raise VerificationError("Shortest-coder payload corrupt: it ends in a zero byte, which the coder "
                                        "never writes for this candidate.", hint=_HINT)
            rest = max(0, total - f)  # bits after the flag
            nbytes = (rest + 7) // 8
            body = value & ((1 << rest) - 1)
            inner = (body << (8 * nbytes - rest)).to_bytes(nbytes, "big").rstrip(b"\0")
        else:
            h = header_bits(coder, length, alphabet_size)
            hb = (f + h + 7) // 8  # bytes holding flag and header
            if len(payload) < hb:
                raise VerificationError(f"Shortest-coder payload truncated: {len(payload)} bytes, flag and "
                                        f"{name!r} header need {hb}.", hint=_HINT)
            head, pad = int.from_bytes(payload[:hb], "big"), 8 * hb - f - h
            if head & ((1 << pad) - 1):
                raise VerificationError("Shortest-coder payload corrupt: nonzero padding after the header.", hint=_HINT)
            writer = BitWriter()
            writer.write((head >> pad) & ((1 << h) - 1), h)
            inner = writer.getvalue() + payload[hb:]
        try:
            return coder.decode(inner, length, alphabet_size)
        except VerificationError as exc:
            raise VerificationError(f"Shortest coder, candidate {name!r}: {exc.message}", hint=exc.hint) from exc
