"""LM-GC coding: the exact bytes come back, the coded length is sum(-log2 p), and every bad input
(a non-float file, an empty one, a truncated or altered .lmgc, another prior, another environment)
is one clear error that overwrites nothing.

Decoding runs the prior once per token, so each round trip here codes one or two 512-byte chunks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmgc_priors import numbers_prior, text_prior
from sublora.lmgc import container
from sublora.lmgc.codec import CodecSettings, encode, probabilities, windows
from sublora.lmgc.errors import (
    ContainerError,
    DecodeError,
    EmptyInputError,
    EnvironmentMismatchError,
    NotFloat32Error,
    OutputExistsError,
    PriorMismatchError,
)
from sublora.lmgc.files import compress_file, decompress_file
from sublora.lmgc.prior import load_prior


@pytest.fixture(scope="module")
def prior():
    return load_prior(text_prior())


def _floats(n: int, seed: int = 0) -> bytes:
    return (np.random.default_rng(seed).standard_normal(n) * 1e-3).astype("<f4").tobytes()


def test_round_trip_and_coded_length_is_sum_of_log_probabilities(prior, tmp_path):
    raw = _floats(100)  # one chunk, zero-padded to 512 bytes
    (tmp_path / "g.f32").write_bytes(raw)
    result = compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(window=32))
    header, words = container.read(tmp_path / "g.lmgc")
    assert header["windows"] == len(windows(header["tokens"], 32)) > 30
    # one range-coded stream: its length is sum(-log2 p) plus a few bytes in all, not per window
    assert abs(result["payload_bytes"] - result["ideal_bytes"]) <= 8
    assert header["prior"]["identity"] == prior.identity and "Zero-shot" in header["prior"]["describe"]
    assert header["environment"]["threads"] == 1 and header["raw_bytes"] == 400

    out = decompress_file(tmp_path / "g.lmgc", tmp_path / "g.out", prior)
    assert (tmp_path / "g.out").read_bytes() == raw and out["warnings"] == []


def test_round_trip_non_ascii_text_groups_and_boundaries(prior, tmp_path):
    """iso text is UTF-8 bytes of 1-2 tokens per character; 3-byte groups cut floats; 2 chunks, short windows."""
    raw = _floats(150, seed=3)  # 600 bytes: a full chunk and a padded one
    (tmp_path / "g.f32").write_bytes(raw)
    settings = CodecSettings(serialization="iso-comma+space", bytes_per_group=3, window=9)
    compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, settings)
    header, _ = container.read(tmp_path / "g.lmgc")
    assert header["chunks"] == 2 and header["tokens"] > 2 * 512
    decompress_file(tmp_path / "g.lmgc", tmp_path / "g.out", prior)
    assert (tmp_path / "g.out").read_bytes() == raw


def test_a_kv_cache_on_both_sides_round_trips_with_the_windows_rate(prior, tmp_path):
    """context: cache steps a KV cache one token at a time on both sides (each window restarted at BOS): exact,
    the same windows and contexts as one pass per window, so the same rate up to the logits' last bits."""
    raw = _floats(150, seed=5)  # 2 chunks
    (tmp_path / "g.f32").write_bytes(raw)
    by_window = compress_file(tmp_path / "g.f32", tmp_path / "w.lmgc", prior, CodecSettings(window=24))
    cached = compress_file(tmp_path / "g.f32", tmp_path / "c.lmgc", prior, CodecSettings(window=24, context="cache"))
    header, _ = container.read(tmp_path / "c.lmgc")
    assert header["context"] == "cache" and container.read(tmp_path / "w.lmgc")[0]["context"] == "window"
    assert header["windows"] == by_window["windows"] > 10
    assert cached["ideal_bytes"] == pytest.approx(by_window["ideal_bytes"], rel=1e-5)
    decompress_file(tmp_path / "c.lmgc", tmp_path / "c.out", prior)
    assert (tmp_path / "c.out").read_bytes() == raw


def test_probabilities_have_the_floor_and_sum_to_one():
    import torch

    logits = torch.tensor([50.0, 0.0, -50.0], dtype=torch.float32)
    p = probabilities(logits, 1e-4)
    assert p.dtype == np.float64 and p.min() >= 1e-4 / 3 and abs(p.sum() - 1) < 1e-12


def test_encoder_rows_equal_the_decoders_prefix_rows(prior):
    """The fact decoding rests on: row t of one full-window pass == row t with later positions padded."""
    from sublora.lmgc.codec import window_input

    tokens = np.frombuffer(b"cdcccc3d 0000803f 0ad723bb 01234567", dtype=np.uint8).astype(np.int64)[:31]
    full = prior.logits(window_input(tokens, 32, prior.bos_id, prior.pad_id))
    for t in (0, 5, 17, 30):
        prefix = prior.logits(window_input(tokens[:t], 32, prior.bos_id, prior.pad_id))
        assert np.array_equal(probabilities(full[t], 1e-4), probabilities(prefix[t], 1e-4))


def test_another_prior_is_refused_before_decoding(prior, tmp_path):
    raw = _floats(64)
    (tmp_path / "g.f32").write_bytes(raw)
    compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(window=32))
    other = load_prior(numbers_prior())
    assert other.identity != prior.identity and other.saw["zero_shot"] is False
    assert "NOT zero-shot" in other.describe() and "random normal floats" in other.describe()
    (tmp_path / "g.out").write_bytes(b"keep me")
    with pytest.raises(PriorMismatchError, match="not the one this file was coded with"):
        decompress_file(tmp_path / "g.lmgc", tmp_path / "g.out", other, force=True)
    with pytest.raises(PriorMismatchError):
        decompress_file(tmp_path / "g.lmgc", tmp_path / "g2.out", str(numbers_prior()))
    assert (tmp_path / "g.out").read_bytes() == b"keep me" and not (tmp_path / "g2.out").exists()


def test_a_wrong_prior_that_passes_the_identity_check_still_never_gives_wrong_bytes(prior, tmp_path):
    """Defence in depth: if probabilities differ anyway, decoding stops with an error, never with other bytes."""
    raw = _floats(16)
    (tmp_path / "g.f32").write_bytes(raw)
    compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(serialization="hex-none", window=32))
    impostor = load_prior(numbers_prior())
    impostor.identity = prior.identity
    with pytest.raises(DecodeError):
        decompress_file(tmp_path / "g.lmgc", tmp_path / "g.out", impostor)
    assert not (tmp_path / "g.out").exists()


def test_bad_inputs_are_one_clear_error_each_and_overwrite_nothing(prior, tmp_path):
    out = tmp_path / "out.lmgc"
    out.write_bytes(b"previous")
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 7)
    (tmp_path / "empty.f32").write_bytes(b"")
    with pytest.raises(NotFloat32Error, match="7 bytes, not a whole number of float32"):
        compress_file(tmp_path / "odd.bin", out, prior, force=True)
    with pytest.raises(EmptyInputError, match="empty"):
        compress_file(tmp_path / "empty.f32", out, prior, force=True)
    with pytest.raises(OutputExistsError, match="exists"):
        compress_file(tmp_path / "odd.bin", out, prior)
    with pytest.raises(FileNotFoundError):
        compress_file(tmp_path / "missing.f32", out, prior, force=True)
    assert out.read_bytes() == b"previous"

    (tmp_path / "g.f32").write_bytes(_floats(8))
    compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(window=32))
    data = (tmp_path / "g.lmgc").read_bytes()
    restored = tmp_path / "restored.f32"
    restored.write_bytes(b"previous")
    for name, damaged, message in [
        ("cut.lmgc", data[:-5], "truncated"),
        ("header.lmgc", data[:40], "truncated"),
        ("tiny.lmgc", data[:10], "truncated"),
        ("flipped.lmgc", data[:-1] + bytes([data[-1] ^ 1]), "altered"),
        ("foreign.lmgc", b"PK\x03\x04" + data[4:], "not a .lmgc file"),
    ]:
        (tmp_path / name).write_bytes(damaged)
        with pytest.raises(ContainerError, match=message):
            decompress_file(tmp_path / name, restored, prior, force=True)
    assert restored.read_bytes() == b"previous"


def test_another_environment_is_refused_unless_allowed(prior, tmp_path):
    raw = _floats(8)
    (tmp_path / "g.f32").write_bytes(raw)
    compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(serialization="iso", window=32))
    header, words = container.read(tmp_path / "g.lmgc")
    header["environment"]["torch"] = "1.0.0"
    header.pop("payload")
    (tmp_path / "moved.lmgc").write_bytes(container.pack(header, words))
    with pytest.raises(EnvironmentMismatchError, match=r"torch: 1\.0\.0 ->"):
        decompress_file(tmp_path / "moved.lmgc", tmp_path / "g.out", prior)
    result = decompress_file(tmp_path / "moved.lmgc", tmp_path / "g.out", prior, allow_mismatch=True)
    assert result["warnings"] and (tmp_path / "g.out").read_bytes() == raw


def test_gradient_directory_input_records_its_checkpoint(prior, tmp_path):
    from sublora.core.gradlog import GradLog

    log = GradLog.create(tmp_path / "grads", {"network": "test"}, [("b", (3,)), ("a", (2, 2))])
    rng = np.random.default_rng(0)
    for step in (10, 20):
        log.add(step, {"b": rng.standard_normal(3).astype(np.float32), "a": rng.standard_normal((2, 2)).astype(np.float32)})
    from sublora.lmgc.gradients import raw_bytes

    settings = CodecSettings(window=32)
    compress_file(tmp_path / "grads", tmp_path / "g.lmgc", prior, settings)
    header, _ = container.read(tmp_path / "g.lmgc")
    assert header["input"]["kind"] == "gradients" and header["input"]["checkpoint"] == 20
    assert header["raw_bytes"] == 28 and header["raw_sha256"] == __import__("hashlib").sha256(
        raw_bytes(tmp_path / "grads", 20)).hexdigest()
    compress_file(tmp_path / "grads" / "grads_000010.safetensors", tmp_path / "g10.lmgc", prior, settings)
    assert json.loads(json.dumps(container.read(tmp_path / "g10.lmgc")[0]["input"]))["checkpoint"] == 10


def test_window_longer_than_the_context_is_refused(prior):
    from sublora.lmgc.errors import PriorError

    assert prior.window(None) == 32 and prior.window(None, 16) == 16
    with pytest.raises(PriorError, match="exceeds the prior's context of 32"):
        encode(_floats(4), prior, CodecSettings(window=64))
