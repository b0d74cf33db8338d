"""The built-in tokenizers: raw UTF-8 bytes, and tiktoken BPE encodings."""

from __future__ import annotations

import numpy as np

from sublora.core.data.configs import BytesTokenizerConfig, TiktokenTokenizerConfig
from sublora.core.errors import DataError
from sublora.core.tokenizer import Tokenizer

EOT_TEXT = "<|endoftext|>"


def _as_ids(ids) -> np.ndarray:
    return np.asarray(ids, dtype=np.int64).reshape(-1)


class BytesTokenizer(Tokenizer):
    """Bytes need no vocabulary file, so this works offline and on any text."""

    vocab_size = 257
    eot_id = 256

    def __init__(self, config: BytesTokenizerConfig):
        super().__init__(config)

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids) -> str:
        ids = _as_ids(ids)
        bad = ids[(ids < 0) | (ids > self.eot_id)]
        if bad.size:
            raise DataError(f"Token id {int(bad[0])} is outside the bytes vocabulary (0..{self.eot_id}).")
        parts, start = [], 0
        for pos in np.flatnonzero(ids == self.eot_id).tolist() + [len(ids)]:
            parts.append(bytes(ids[start:pos].astype(np.uint8)).decode("utf-8", errors="replace"))
            if pos < len(ids):
                parts.append(EOT_TEXT)
            start = pos + 1
        return "".join(parts)


class TiktokenTokenizer(Tokenizer):
    """GPT-2's BPE (or another tiktoken encoding); the encoding's own eot token ends documents."""

    def __init__(self, config: TiktokenTokenizerConfig):
        super().__init__(config)
        self.encoding = _load_encoding(config.variant)
        self.eot_id = int(self.encoding.eot_token)
        self.vocab_size = int(self.encoding.n_vocab)

    def encode(self, text: str) -> np.ndarray:
        # encode_ordinary: a literal "<|endoftext|>" in the corpus is text, not a special token.
        return np.asarray(self.encoding.encode_ordinary(text), dtype=np.int64)

    def decode(self, ids) -> str:
        return self.encoding.decode(_as_ids(ids).tolist())


def _load_encoding(name: str):
    try:
        import tiktoken
    except ImportError as exc:
        raise DataError(
            "The tiktoken tokenizer needs the 'tiktoken' package.",
            hint="Run `pip install tiktoken`, or use --data.tokenizer=bytes.",
        ) from exc
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # noqa: BLE001 - network, cache and parse failures all mean "not available"
        raise DataError(
            f"Could not load tiktoken encoding '{name}' ({type(exc).__name__}: {exc}).",
            hint="This machine may be offline: use --data.tokenizer=bytes (no files needed), "
            "or set TIKTOKEN_CACHE_DIR to a directory holding the encoding.",
        ) from exc
