"""Classical codecs: each round-trips, the rate table has every codec x mode, a missing package is a row."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sublora.lmgc import baselines
from sublora.lmgc.baselines import CODECS, MODES, nearest_square, rates, round_trip
from sublora.lmgc.serialize import CHUNK, chunks


def _floats(n: int, seed: int = 0) -> bytes:
    """Gradient-like bytes: small normal float32 values."""
    return (np.random.default_rng(seed).standard_normal(n) * 1e-3).astype("<f4").tobytes()


INSTALLED = [name for name, codec in CODECS.items() if codec.available()]


@pytest.mark.parametrize("name", INSTALLED)
@pytest.mark.parametrize("raw", [_floats(1000), _floats(128), bytes(range(256)) * 4, bytes(4096)],
                         ids=["floats", "one-chunk", "bytes", "zeros"])
def test_every_installed_codec_round_trips(name, raw):
    assert round_trip(name, raw)
    for chunk in chunks(raw, CHUNK):
        assert round_trip(name, chunk)


def test_the_reference_codecs_are_all_there():
    assert set(CODECS) == {"gzip", "lzma", "bz2", "zstd", "png", "flac", "fpzip"}
    for name in ("gzip", "lzma", "bz2"):  # the standard library's: always available
        assert CODECS[name].available()


def test_rates_cover_every_codec_and_mode():
    raw = _floats(3000)
    rows = rates(raw)
    assert [(r["codec"], r["mode"]) for r in rows] == [(c, m) for c in CODECS for m in MODES]
    for row in rows:
        if row["status"] == "ok":
            assert row["rate"] == pytest.approx(100.0 * row["bytes"] / len(raw))
            assert row["bytes"] > 0
        else:
            assert row["status"].startswith("not installed") and row["rate"] is None
    gzip_whole = next(r for r in rows if r["codec"] == "gzip" and r["mode"] == "whole")
    gzip_chunked = next(r for r in rows if r["codec"] == "gzip" and r["mode"] == "chunked")
    assert gzip_chunked["bytes"] > gzip_whole["bytes"]  # one header per 512-byte chunk
    assert 0 < gzip_whole["rate"] < 100  # small float32 values share their exponent bytes


def test_chunked_size_is_the_sum_over_padded_chunks():
    raw = _floats(300)  # 1200 bytes: 3 chunks, the last padded
    expected = sum(len(CODECS["lzma"].compress(c)) for c in chunks(raw))
    assert baselines.compressed_size(CODECS["lzma"], raw, "chunked") == expected


def test_a_missing_package_is_a_row_not_an_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "zstandard" else real(name, *a))
    rows = [r for r in rates(_floats(256)) if r["codec"] == "zstd"]
    assert len(rows) == 2 and all(r["status"].startswith("not installed") and "[baselines]" in r["status"] for r in rows)
    assert all(r["bytes"] is None and r["rate"] is None for r in rows)


def test_fpzip_needs_whole_float32_values():
    if not CODECS["fpzip"].available():
        pytest.skip("fpzip not installed")
    row = rates(b"\x00" * 7, codecs=["fpzip"], modes=("whole",))[0]
    assert row["status"].startswith("n/a") and row["rate"] is None


def test_png_uses_the_nearest_to_square_factorization():
    assert nearest_square(512) == (16, 32)
    assert nearest_square(36) == (6, 6)
    assert nearest_square(13) == (1, 13)
    for n in (1194024, 97 * 89, 4096 * 3):
        a, b = nearest_square(n)
        assert a * b == n and a <= b and not any(n % k == 0 for k in range(a + 1, int(n ** 0.5) + 1))
