"""Tokenizers: round trips, the eot id, and the offline tiktoken message."""

from __future__ import annotations

import numpy as np
import pytest

from sublora.core.errors import ConfigError, DataError
from sublora.core.registry import registry


def build(spec: str):
    return registry("tokenizer").config(spec).build()


def test_bytes_round_trip_with_unicode():
    tok = build("bytes")
    text = "def f(x):\n    return 'héllo ✓'\n"
    ids = tok.encode(text)
    assert ids.dtype == np.int64
    assert ids.max() < 256 and len(ids) == len(text.encode("utf-8"))
    assert tok.decode(ids) == text
    assert (tok.vocab_size, tok.eot_id) == (257, 256)


def test_bytes_decode_marks_eot_and_replaces_broken_utf8():
    tok = build("bytes")
    ids = np.concatenate([tok.encode("a"), [256], tok.encode("é")[:1], [256]])
    assert tok.decode(ids) == "a<|endoftext|>\ufffd<|endoftext|>"
    assert tok.decode([]) == ""
    with pytest.raises(DataError, match="257"):
        tok.decode([257])


def test_tiktoken_variants_and_default():
    cfg = registry("tokenizer").config("tiktoken")
    assert cfg.variant == "gpt2" and cfg.spec == "tiktoken:gpt2"
    assert registry("tokenizer").config("tiktoken:cl100k_base").variant == "cl100k_base"
    with pytest.raises(ConfigError, match="unknown variant"):
        registry("tokenizer").config("tiktoken:nope")


def test_tiktoken_offline_failure_names_bytes(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")

    def offline(name):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(DataError) as info:
        build("tiktoken:gpt2")
    message = str(info.value)
    assert "'gpt2'" in message and "no route to host" in message
    assert "--data.tokenizer=bytes" in message and "TIKTOKEN_CACHE_DIR" in message


def test_tiktoken_wraps_a_loaded_encoding(monkeypatch):
    tiktoken = pytest.importorskip("tiktoken")

    class FakeEncoding:  # stands in for the downloaded file: no network in tests
        eot_token, n_vocab = 50256, 50257

        def encode_ordinary(self, text):
            return [ord(c) for c in text]

        def decode(self, ids):
            return "".join("<|endoftext|>" if i == self.eot_token else chr(i) for i in ids)

    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: FakeEncoding())
    tok = build("tiktoken")
    assert (tok.vocab_size, tok.eot_id) == (50257, 50256)
    ids = tok.encode("hi <|endoftext|>")
    assert ids.dtype == np.int64 and tok.decode(ids) == "hi <|endoftext|>"
    assert tok.decode(np.array([104, 50256])) == "h<|endoftext|>"
