"""The coder contract: checks any ``sublora.coders`` plugin can run on itself (numpy only).

A coder is lossless and self-contained: ``decode(encode(s, A), len(s), A)`` gives back ``s``
exactly, from the payload, the length and the alphabet size alone (what ``model.slc`` stores
and the run's config knows). Each check takes a registered spec (``"arithmetic"``), a config
instance or a built coder, raises ``AssertionError`` naming the coder and the case, and needs
no pytest. ``check_coder_contract`` runs them all.

- ``check_coder_round_trip``: every case of ``cases()`` (lengths 0 to 5000; alphabets of 1, 2,
  3, 11, 24 and 255 symbols; skewed, uniform, one repeated symbol, half the alphabet unused,
  long runs) is encoded to ``bytes`` and decoded exactly, by a second instance built from the
  same config after every case was encoded (so no state may pass from encoder to decoder);
  the input is not modified.
- ``check_coder_determinism``: the same symbols give the same bytes from a second instance
  (``verify`` re-encodes and compares), on the cases of at most 1000 symbols.
- ``check_coder_rejects``: symbols outside ``[0, alphabet_size)`` raise ``ValueError`` instead
  of a payload that would decode to something else.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sublora.core.coder import Coder, CoderConfig
from sublora.core.testing._resolve import label, resolve

LENGTHS: tuple[int, ...] = (0, 1, 2, 3, 7, 64, 1000, 5000)
ALPHABETS: tuple[int, ...] = (1, 2, 3, 11, 24, 255)

Spec = str | CoderConfig | Coder


def cases(seed: int = 0) -> Iterator[tuple[str, int, np.ndarray]]:
    """(description, alphabet size, symbols int64) for every length, alphabet and shape of distribution."""
    rng = np.random.default_rng(seed)
    for length in LENGTHS:
        for A in ALPHABETS:
            p = rng.dirichlet(np.full(A, 0.5))
            yield f"skewed, length {length}, alphabet {A}", A, rng.choice(A, size=length, p=p).astype(np.int64)
            yield f"uniform, length {length}, alphabet {A}", A, rng.integers(0, A, length, dtype=np.int64)
            yield f"one symbol, length {length}, alphabet {A}", A, np.full(length, A - 1, dtype=np.int64)
            if A > 2:
                half = rng.choice(np.arange(0, A, 2), size=length).astype(np.int64)
                yield f"odd symbols unused, length {length}, alphabet {A}", A, half
            runs = np.sort(rng.integers(0, A, length)).astype(np.int64)
            yield f"sorted runs, length {length}, alphabet {A}", A, runs


def _resolve(spec: Spec, options: dict | None) -> tuple[Coder, Coder, str]:
    """(coder, a second instance from the same config, name)."""
    config, coder = resolve("coder", spec, options, CoderConfig, Coder)
    other = config.build() if isinstance(config, CoderConfig) and not isinstance(spec, Coder) else coder
    return coder, other, label("coder", config, coder)


def check_coder_round_trip(spec: Spec, options: dict | None = None, seed: int = 0) -> None:
    """Every case decodes exactly, by a second instance, after all were encoded (module docstring)."""
    coder, decoder, name = _resolve(spec, options)
    encoded = []
    for what, A, symbols in cases(seed):
        before = symbols.copy()
        payload = coder.encode(symbols, A)
        assert isinstance(payload, bytes), f"{name} ({what}): encode returned {type(payload).__name__}, not bytes"
        assert np.array_equal(symbols, before), f"{name} ({what}): encode modified the symbols"
        encoded.append((what, A, symbols, payload))
    for what, A, symbols, payload in reversed(encoded):
        decoded = np.asarray(decoder.decode(payload, symbols.size, A))
        assert decoded.shape == symbols.shape, f"{name} ({what}): decoded shape {decoded.shape}, expected {symbols.shape}"
        assert decoded.size == 0 or np.issubdtype(decoded.dtype, np.integer), (
            f"{name} ({what}): decoded {decoded.dtype}, not integers")
        wrong = np.flatnonzero(decoded != symbols)
        assert wrong.size == 0, (f"{name} ({what}): {wrong.size} symbols decode wrong, first at position {wrong[0]}: "
                                 f"{decoded[wrong[0]]} instead of {symbols[wrong[0]]}")


def check_coder_determinism(spec: Spec, options: dict | None = None, seed: int = 1) -> None:
    """The same symbols give the same bytes from a second instance (cases of at most 1000 symbols)."""
    coder, other, name = _resolve(spec, options)
    for what, A, symbols in cases(seed):
        if symbols.size <= 1000:
            assert coder.encode(symbols, A) == other.encode(symbols, A), (
                f"{name} ({what}): encoding the same symbols twice gave different bytes")


def check_coder_rejects(spec: Spec, options: dict | None = None) -> None:
    """Symbols outside [0, alphabet_size) raise ValueError."""
    coder, _, name = _resolve(spec, options)
    for symbols, A in ((np.array([0, 11], dtype=np.int64), 11), (np.array([-1, 0], dtype=np.int64), 11),
                       (np.array([1], dtype=np.int64), 1)):
        try:
            coder.encode(symbols, A)
        except ValueError:
            continue
        raise AssertionError(f"{name}: encode({symbols.tolist()}, alphabet_size={A}) did not raise ValueError "
                             "(a symbol outside the alphabet)")


def check_coder_contract(spec: Spec, options: dict | None = None) -> None:
    """The whole contract: exact round trips, deterministic bytes, out-of-alphabet symbols refused."""
    check_coder_round_trip(spec, options)
    check_coder_determinism(spec, options)
    check_coder_rejects(spec, options)


__all__ = [
    "ALPHABETS",
    "LENGTHS",
    "cases",
    "check_coder_contract",
    "check_coder_determinism",
    "check_coder_rejects",
    "check_coder_round_trip",
]
