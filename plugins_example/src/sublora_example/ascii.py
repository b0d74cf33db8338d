"""An ASCII character tokenizer: id = code point for 0-127, 128 for any other character, 129 ends a text.

130 ids instead of the bytes tokenizer's 257: a smaller output layer for ASCII corpora. Lossy
outside ASCII (every other character becomes id 128, decoded as U+FFFD).
"""

from __future__ import annotations

import numpy as np

from sublora.core.errors import DataError
from sublora.core.tokenizer import Tokenizer

UNKNOWN = 128
EOT_TEXT = "<|endoftext|>"


class AsciiTokenizer(Tokenizer):
    vocab_size = 130
    eot_id = 129
    lossless = False  # the contract then checks encode(decode(ids)) == ids instead of decode(encode(t)) == t

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)  # one code point each
        return np.where(codes < 128, codes, UNKNOWN)

    def decode(self, ids) -> str:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() > self.eot_id):
            raise DataError(f"Token id {int(ids[(ids < 0) | (ids > self.eot_id)][0])} is outside 0..{self.eot_id}.")
        return "".join(chr(i) if i < 128 else "\ufffd" if i == UNKNOWN else EOT_TEXT for i in ids.tolist())
