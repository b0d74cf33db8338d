"""The tokenizer contract: checks any ``sublora.tokenizers`` plugin can run on itself (numpy only).

Each check takes a registered spec (``"tiktoken:gpt2"``), a config instance or a built
tokenizer, raises ``AssertionError`` naming the tokenizer, the text and what is wrong, and
needs no pytest. ``check_tokenizer_contract`` runs them all.

- ``check_tokenizer_vocabulary``: ``vocab_size`` is an int >= 2 that fits the prepared files'
  uint32, ``eot_id`` an int in ``[0, vocab_size)``; ``decode([eot_id])`` is a visible,
  non-empty marker.
- ``check_tokenizer_texts``: on every text of ``SAMPLE_TEXTS`` (code, whitespace, CRLF,
  non-ASCII, a literal ``<|endoftext|>``, a long line): ``encode`` gives a 1-D integer array
  of ids in ``[0, vocab_size)`` without ``eot_id`` (which only ends documents), the same ids
  twice and from a second instance; ``decode`` accepts an array or a list and returns a str.
  Lossless tokenizers: ``decode(encode(t)) == t``. A tokenizer that maps some text to an
  "unknown" id sets the class attribute ``lossless = False`` (or the check is called with
  ``lossless=False``): re-encoding the decoded text must then give the same ids.
"""

from __future__ import annotations

import numpy as np

from sublora.core.testing._resolve import label, resolve
from sublora.core.tokenizer import Tokenizer, TokenizerConfig

SAMPLE_TEXTS: tuple[str, ...] = (
    "",
    "hello world",
    "def f(x):\n    return x + 1\n",
    "tabs\tand\r\nCRLF line ends\n\n",
    "  leading and trailing spaces  ",
    "17 + 25 = 42\n",
    "non-ASCII: ünïcödé — 日本語 🙂",
    "<|endoftext|> is text here, not a token",
    "a" * 2000,
)

Spec = str | TokenizerConfig | Tokenizer


def _resolve(spec: Spec, options: dict | None) -> tuple[Tokenizer, Tokenizer, str]:
    """(tokenizer, a second instance from the same config, name)."""
    config, tokenizer = resolve("tokenizer", spec, options, TokenizerConfig, Tokenizer)
    other = config.build() if not isinstance(spec, Tokenizer) else tokenizer
    return tokenizer, other, label("tokenizer", config, tokenizer)


def check_tokenizer_vocabulary(spec: Spec, options: dict | None = None) -> None:
    """vocab_size and eot_id well-formed; the end-of-text id decodes to a visible marker."""
    tokenizer, _, name = _resolve(spec, options)
    V, eot = getattr(tokenizer, "vocab_size", None), getattr(tokenizer, "eot_id", None)
    assert isinstance(V, (int, np.integer)) and 2 <= V <= 2**32, f"{name}: vocab_size is {V!r}, not an int in [2, 2^32]"
    assert isinstance(eot, (int, np.integer)) and 0 <= eot < V, f"{name}: eot_id is {eot!r}, not an int in [0, {V})"
    marker = tokenizer.decode([int(eot)])
    assert isinstance(marker, str) and marker.strip(), f"{name}: decode([eot_id]) gave {marker!r}, not a visible marker"


def _ids(tokenizer: Tokenizer, text: str, where: str) -> np.ndarray:
    ids = tokenizer.encode(text)
    assert isinstance(ids, np.ndarray) and ids.ndim == 1, (
        f"{where}: encode returned {type(ids).__name__} of shape {getattr(ids, 'shape', '?')}, not a 1-D numpy array")
    assert ids.size == 0 or np.issubdtype(ids.dtype, np.integer), f"{where}: encode returned {ids.dtype}, not integers"
    if ids.size:
        assert ids.min() >= 0 and ids.max() < tokenizer.vocab_size, (
            f"{where}: ids span [{ids.min()}, {ids.max()}], outside [0, {tokenizer.vocab_size})")
        assert not np.any(ids == tokenizer.eot_id), (
            f"{where}: encode produced the end-of-text id {tokenizer.eot_id}, which only ends documents")
    return ids


def check_tokenizer_texts(spec: Spec, options: dict | None = None, texts: tuple[str, ...] = SAMPLE_TEXTS,
                          lossless: bool | None = None) -> None:
    """encode/decode on every text (module docstring); ``lossless`` None: the tokenizer's ``lossless`` attribute."""
    tokenizer, other, name = _resolve(spec, options)
    if lossless is None:
        lossless = bool(getattr(tokenizer, "lossless", True))
    for text in texts:
        where = f"{name} on {text[:40]!r}"
        ids = _ids(tokenizer, text, where)
        assert np.array_equal(_ids(tokenizer, text, where), ids) and np.array_equal(_ids(other, text, where), ids), (
            f"{where}: encoding the same text twice gave different ids")
        decoded = tokenizer.decode(ids)
        assert isinstance(decoded, str), f"{where}: decode returned {type(decoded).__name__}, not str"
        assert tokenizer.decode(ids.tolist()) == decoded, f"{where}: decode of a list differs from decode of an array"
        if lossless:
            assert decoded == text, (f"{where}: decode(encode(text)) gave {decoded[:40]!r}; a tokenizer that maps "
                                     "some text to an unknown id sets the class attribute lossless = False")
        else:
            again = _ids(tokenizer, decoded, where)
            assert np.array_equal(again, ids), f"{where}: encode(decode(ids)) != ids"


def check_tokenizer_contract(spec: Spec, options: dict | None = None, texts: tuple[str, ...] = SAMPLE_TEXTS,
                             lossless: bool | None = None) -> None:
    """The whole contract: vocabulary, then texts."""
    check_tokenizer_vocabulary(spec, options)
    check_tokenizer_texts(spec, options, texts, lossless)


__all__ = ["SAMPLE_TEXTS", "check_tokenizer_contract", "check_tokenizer_texts", "check_tokenizer_vocabulary"]
