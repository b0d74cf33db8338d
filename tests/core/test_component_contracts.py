"""Every registered quantizer, coder, source and tokenizer (built-in or third-party) against its contract
in sublora.core.testing, and proof that each contract catches broken components.

The specs are read from the entry-point registry at collection time, so a newly installed plugin
is tested here without editing this file (a source whose defaults read nothing needs options:
see SOURCE_OPTIONS).
"""

from __future__ import annotations

import random
import time
from typing import Any

import numpy as np
import pytest

from sublora.core.coder import Coder, CoderConfig
from sublora.core.errors import DataError, SubloraError
from sublora.core.quantizer import QuantizedVector, Quantizer, QuantizerConfig
from sublora.core.registry import refresh, registry
from sublora.core.source import Source, SourceConfig
from sublora.core.testing import (
    check_coder_contract,
    check_coder_determinism,
    check_coder_rejects,
    check_coder_round_trip,
    check_quantizer_contract,
    check_quantizer_determinism,
    check_quantizer_error,
    check_quantizer_output,
    check_source_contract,
    check_source_documents,
    check_source_metadata,
    check_tokenizer_contract,
    check_tokenizer_texts,
    check_tokenizer_vocabulary,
)
from sublora.core.tokenizer import Tokenizer, TokenizerConfig


def _specs(kind: str) -> list[str]:
    """Every registered family and each non-default variant (a broken plugin is listed, and fails)."""
    refresh()
    specs = []
    for status in registry(kind).statuses():
        specs.append(status.entry.name)
        default = registry(kind).load(status.entry.name).default_variant if status.ok else None
        specs += [f"{status.entry.name}:{v}" for v in status.variants if v != default]
    return specs


@pytest.mark.parametrize("spec", _specs("quantizer"))
def test_quantizer_contract(spec):
    check_quantizer_contract(spec)


@pytest.mark.parametrize("spec", _specs("coder"))
def test_coder_contract(spec):
    try:
        registry("coder").config(spec)
    except SubloraError as exc:  # a coder whose options are required (lm: a prior) runs the contract in its own tests
        pytest.skip(f"{spec} needs options: {exc}")
    check_coder_contract(spec)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("contract_corpus")
    for i in range(6):
        (root / f"m{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    (root / "docs.jsonl").write_text('{"text": "first"}\n{"text": "second"}\n')
    return root


#: options of the built-in sources whose defaults need files or a download
SOURCE_OPTIONS: dict[str, Any] = {
    "text": lambda root: {"path": str(root)},
    "pystdlib": lambda root: {"root": str(root)},
    "hf": lambda root: {"name": "json", "data_files": str(root / "docs.jsonl"), "cache_dir": str(root / "hf-cache")},
}


@pytest.mark.parametrize("spec", _specs("source"))
def test_source_contract(spec, corpus):
    options = SOURCE_OPTIONS.get(spec.partition(":")[0], lambda root: None)(corpus)
    try:
        config = registry("source").config(spec, options)
        config.build()
    except SubloraError as exc:  # e.g. the hf source without the `datasets` package
        pytest.skip(f"{spec} cannot be built here: {exc}")
    check_source_contract(spec, options)


@pytest.mark.parametrize("spec", _specs("tokenizer"))
def test_tokenizer_contract(spec):
    try:
        registry("tokenizer").config(spec).build()
    except DataError as exc:  # tiktoken downloads its encoding on first use: offline, it cannot be built
        pytest.skip(f"{spec} cannot be built here: {exc.message.split(' (')[0]}")
    check_tokenizer_contract(spec)


@pytest.mark.slow  # a fresh process
def test_only_the_projector_checks_import_torch(fresh_python):
    """A quantizer, coder, source, tokenizer or estimator author's tests need numpy, not torch; the projector
    names are loaded on first use and are exactly projector_contract's."""
    code = (
        "import json, sys\n"
        "from sublora.core.testing import check_quantizer_contract, check_coder_contract, check_bound_contract\n"
        "from sublora.core.testing import check_source_contract, check_tokenizer_contract\n"
        "before = 'torch' in sys.modules\n"
        "import sublora.core.testing as t\n"
        "from sublora.core.testing import check_contract, projector_contract\n"
        "print(json.dumps([before, 'torch' in sys.modules, sorted(t._PROJECTOR_NAMES) == sorted(projector_contract.__all__),"
        " all(hasattr(t, n) for n in t.__all__)]))\n"
    )
    assert fresh_python(code) == [False, True, True, True]


# --- each contract catches broken components ---------------------------------------------------


def _config(base: type, impl: type, **fields: Any):
    """A config of kind ``base`` whose implementation is ``impl`` (a class defined in this file)."""
    namespace: dict[str, Any] = {"implementation_class": lambda self: impl, "__module__": __name__,
                                 "__annotations__": {}}
    namespace.update({k: v for k, v in fields.items() if k in ("fixed_codebook",)})
    return type(f"{impl.__name__}Config", (base,), namespace)()


class GoodGrid(Quantizer):
    """Evenly spaced on [-max|w|, max|w|]; the broken quantizers below each change one thing."""

    def fit(self, values, seed):
        bound = float(np.max(np.abs(values))) if values.size else 0.0
        return np.linspace(-bound, bound, self.config.levels) if bound else np.zeros(1)


class TooManyLevels(GoodGrid):
    def fit(self, values, seed):
        return np.concatenate([super().fit(values, seed), [0.123456]])


class Unseeded(GoodGrid):
    def fit(self, values, seed):
        return super().fit(values, seed) * (1.0 + 0.1 * np.random.default_rng().random())


class NaNCentroid(GoodGrid):
    def fit(self, values, seed):
        return np.append(super().fit(values, seed)[:-1], np.nan)


class WrongScale(GoodGrid):
    def fit(self, values, seed):
        return np.linspace(-1.0, 1.0, self.config.levels)  # in units of max|w|, never scaled back


class InPlace(GoodGrid):
    def fit(self, values, seed):
        values -= values.mean()  # centres the caller's vector
        return super().fit(values, seed)


class FlagDropped(GoodGrid):
    def quantize(self, values, seed=0):
        q = super().quantize(values, seed)
        return QuantizedVector(q.symbols, q.codebook)  # loses fixed_codebook: QAT would move the grid


def test_a_correct_quantizer_passes():
    check_quantizer_contract(_config(QuantizerConfig, GoodGrid))
    check_quantizer_contract(_config(QuantizerConfig, GoodGrid, fixed_codebook=True))


@pytest.mark.parametrize("impl,check,message", [
    (TooManyLevels, check_quantizer_output, "centroids for levels"),
    (Unseeded, check_quantizer_determinism, "two different quantizations"),
    (NaNCentroid, check_quantizer_output, "non-finite centroids"),
    (WrongScale, check_quantizer_error, "wrong scale"),
    (InPlace, check_quantizer_output, "modified the values"),
])
def test_the_quantizer_contract_catches(impl, check, message):
    with pytest.raises(AssertionError, match=message):
        check(_config(QuantizerConfig, impl))


def test_the_quantizer_contract_catches_a_lost_fixed_codebook_flag():
    with pytest.raises(AssertionError, match="QAT reads the vector's flag"):
        check_quantizer_output(_config(QuantizerConfig, FlagDropped, fixed_codebook=True))


class GoodBytes(Coder):
    """One byte per symbol (alphabets up to 256); the broken coders below each change one thing."""

    def encode(self, symbols, alphabet_size):
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet_size):
            raise ValueError("symbol outside the alphabet")
        return symbols.astype(np.uint8).tobytes()

    def decode(self, payload, length, alphabet_size):
        return np.frombuffer(payload, dtype=np.uint8).astype(np.int64)


class Lossy(GoodBytes):
    def decode(self, payload, length, alphabet_size):
        out = super().decode(payload, length, alphabet_size)
        return np.minimum(out, 200)  # clips large symbols


class Stateful(GoodBytes):
    """Decodes from what this instance encoded last, not from the payload."""

    def encode(self, symbols, alphabet_size):
        self.last = np.asarray(symbols, dtype=np.int64).copy()
        return super().encode(symbols, alphabet_size)

    def decode(self, payload, length, alphabet_size):
        return getattr(self, "last", np.zeros(length, dtype=np.int64))


class RandomPadding(GoodBytes):
    def encode(self, symbols, alphabet_size):
        return super().encode(symbols, alphabet_size) + bytes([random.randrange(256)])

    def decode(self, payload, length, alphabet_size):
        return super().decode(payload[:length], length, alphabet_size)


class Permissive(GoodBytes):
    def encode(self, symbols, alphabet_size):
        return np.asarray(symbols, dtype=np.int64).astype(np.uint8).tobytes()  # -1 silently becomes 255


def test_a_correct_coder_passes():
    check_coder_contract(_config(CoderConfig, GoodBytes))


@pytest.mark.parametrize("impl,check,message", [
    (Lossy, check_coder_round_trip, "decode wrong"),
    (Stateful, check_coder_round_trip, "decode wrong|decoded shape"),
    (RandomPadding, check_coder_determinism, "different bytes"),
    (Permissive, check_coder_rejects, "did not raise ValueError"),
])
def test_the_coder_contract_catches(impl, check, message):
    with pytest.raises(AssertionError, match=message):
        check(_config(CoderConfig, impl))


class GoodSource(Source):
    def documents(self):
        for i in range(30):
            yield f"doc-{i}", f"text {i}\n"


class Shuffled(GoodSource):
    def documents(self):
        docs = list(super().documents())
        random.shuffle(docs)
        yield from docs


class RepeatedIds(GoodSource):
    def documents(self):
        for i, (_, text) in enumerate(super().documents()):
            yield f"doc-{i % 10}", text


class BytesText(GoodSource):
    def documents(self):
        for doc_id, text in super().documents():
            yield doc_id, text.encode()


class ClockFingerprint(GoodSource):
    def fingerprint(self):
        return {"read_at": time.perf_counter_ns()}


class NoSuperInit(GoodSource):
    def __init__(self, config):
        self.config = config


def test_a_correct_source_passes():
    check_source_contract(_config(SourceConfig, GoodSource))


@pytest.mark.parametrize("impl,check,message", [
    (Shuffled, check_source_documents, "other documents or order"),
    (RepeatedIds, check_source_documents, "ids repeat"),
    (BytesText, check_source_documents, "both must be str"),
    (ClockFingerprint, check_source_metadata, "fingerprint\\(\\) changes"),
    (NoSuperInit, check_source_metadata, "super\\(\\).__init__"),
])
def test_the_source_contract_catches(impl, check, message):
    with pytest.raises(AssertionError, match=message):
        check(_config(SourceConfig, impl))


class GoodChars(Tokenizer):
    """One id per Unicode code point, end-of-text after the last one."""

    vocab_size = 0x110001
    eot_id = 0x110000

    def encode(self, text):
        return np.array([ord(c) for c in text], dtype=np.int64)

    def decode(self, ids):
        return "".join("<eot>" if i == self.eot_id else chr(i) for i in np.asarray(ids, dtype=np.int64).tolist())


class OutOfVocabulary(GoodChars):
    vocab_size = 100


class EotInside(GoodChars):
    def encode(self, text):
        return np.append(super().encode(text), self.eot_id)


class Lowercasing(GoodChars):
    def decode(self, ids):
        return super().decode(ids).lower()


class BadEot(GoodChars):
    eot_id = 0x110001


def test_a_correct_tokenizer_passes():
    check_tokenizer_contract(_config(TokenizerConfig, GoodChars))


@pytest.mark.parametrize("impl,check,message", [
    (OutOfVocabulary, check_tokenizer_texts, "outside \\[0, 100\\)"),
    (EotInside, check_tokenizer_texts, "end-of-text id"),
    (Lowercasing, check_tokenizer_texts, "decode\\(encode\\(text\\)\\)"),
    (BadEot, check_tokenizer_vocabulary, "eot_id is 1114113"),
])
def test_the_tokenizer_contract_catches(impl, check, message):
    with pytest.raises(AssertionError, match=message):
        check(_config(TokenizerConfig, impl))
