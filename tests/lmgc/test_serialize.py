"""Serialization: the reference's example, exact inverse for every serialization x bytes per group, chunks."""

from __future__ import annotations

import random
import struct

import pytest

from sublora.core.errors import ConfigError, DataError
from sublora.lmgc.serialize import (BYTES_PER_GROUP, CHUNK, SERIALIZATIONS, chunks, deserialize,
                                    parse_bytes_per_group, serialize, serialize_stream, unchunk)

EXAMPLE = struct.pack("<3f", 0.1, 1.0, -0.0025)  # float32 in memory order (little-endian)


def test_golden_example_of_the_reference():
    assert serialize(EXAMPLE, "hex-space", 4) == "cdcccc3d 0000803f 0ad723bb"


@pytest.mark.parametrize("name,bpg,expected", [
    ("hex-none", 4, "cdcccc3d0000803f0ad723bb"),
    ("hex-comma", 4, "cdcccc3d,0000803f,0ad723bb"),
    ("hex-comma+space", 4, "cdcccc3d, 0000803f, 0ad723bb"),
    ("hex-semicolon", 4, "cdcccc3d;0000803f;0ad723bb"),
    ("hex-0x", 4, "0xcdcccc3d0x0000803f0x0ad723bb"),
    ("hex-space", 1, "cd cc cc 3d 00 00 80 3f 0a d7 23 bb"),
    ("hex-space", 2, "cdcc cc3d 0000 803f 0ad7 23bb"),
    ("hex-space", 3, "cdcccc 3d0000 803f0a d723bb"),
    ("hex-space", 8, "cdcccc3d0000803f 0ad723bb"),  # the last group is shorter
    ("hex-space", None, "cdcccc3d0000803f0ad723bb"),  # none: the whole chunk is one group
    ("iso", 4, "\xcd\xcc\xcc\x3d\x00\x00\x80\x3f\x0a\xd7\x23\xbb"),
    ("iso-space", 4, "\xcd\xcc\xcc\x3d \x00\x00\x80\x3f \x0a\xd7\x23\xbb"),
    ("iso-comma+space", 4, "\xcd\xcc\xcc\x3d, \x00\x00\x80\x3f, \x0a\xd7\x23\xbb"),
])
def test_each_serialization_spells_the_example(name, bpg, expected):
    assert serialize(EXAMPLE, name, bpg) == expected
    assert deserialize(expected, name, bpg) == EXAMPLE


def test_the_names_are_the_reference_names():
    assert list(SERIALIZATIONS) == ["hex-none", "hex-space", "hex-comma", "hex-comma+space", "hex-semicolon",
                                    "hex-0x", "iso", "iso-space", "iso-comma+space"]
    assert BYTES_PER_GROUP == (1, 2, 3, 4, 8, None)


@pytest.mark.parametrize("name", list(SERIALIZATIONS))
@pytest.mark.parametrize("bpg", BYTES_PER_GROUP)
def test_deserialize_is_the_exact_inverse_on_random_bytes(name, bpg):
    rng = random.Random(f"{name}/{bpg}")
    # every byte value, a full chunk, and lengths no group size divides; separators' own bytes included
    cases = [bytes(range(256)), rng.randbytes(CHUNK), rng.randbytes(1), rng.randbytes(7), rng.randbytes(509), b"",
             b" , ;0x" * 20, bytes([0x20, 0x2C]) * 33]
    for raw in cases:
        text = serialize(raw, name, bpg)
        assert deserialize(text, name, bpg) == raw, (name, bpg, len(raw))


@pytest.mark.parametrize("name,text,bpg", [
    ("hex-space", "cdcccc3d 0000803", 4),  # an odd number of hex digits
    ("hex-space", "cdcccc3d  0000803f", 4),  # a doubled separator
    ("hex-space", "CDCCCC3D", 4),  # upper case is not what serialize writes
    ("hex-comma", "cdcccc3d;0000803f", 4),  # the wrong separator
    ("hex-0x", "cdcccc3d", 4),  # the prefix is missing
    ("hex-space", "cdcccc3d ", 4),  # a trailing separator: an empty group
    ("iso", "\u20ac", 4),  # not ISO-8859-1
    ("hex-none", "zz", 1),
])
def test_malformed_text_is_a_data_error(name, text, bpg):
    with pytest.raises(DataError, match=f"not a valid {name}"):
        deserialize(text, name, bpg)


def test_unknown_serialization_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'hex-space'") as info:
        serialize(b"\x00", "hex-spcae")
    assert "hex-comma+space" in info.value.hint


def test_bytes_per_group_parsing():
    assert parse_bytes_per_group("4") == 4 and parse_bytes_per_group("none") is None and parse_bytes_per_group(None) is None
    for bad in ("0", "-1", "four"):
        with pytest.raises(ConfigError):
            parse_bytes_per_group(bad)
    with pytest.raises(ConfigError):
        serialize(b"\x00", "hex-space", 0)


def test_chunks_are_512_bytes_and_the_last_is_zero_padded():
    raw = bytes(range(256)) * 5  # 1280 bytes = 2.5 chunks
    parts = chunks(raw)
    assert [len(p) for p in parts] == [CHUNK] * 3 and CHUNK == 512
    assert parts[0] == raw[:512] and parts[1] == raw[512:1024]
    assert parts[2] == raw[1024:] + bytes(256)
    assert unchunk(parts, len(raw)) == raw
    assert chunks(b"") == [] and chunks(bytes(512)) == [bytes(512)]
    assert [len(p) for p in chunks(b"x", 16)] == [16]
    with pytest.raises(DataError):
        unchunk(parts, 2000)


def test_a_chunk_of_floats_is_128_groups_in_hex_space():
    raw = struct.pack("<200f", *[i / 7 for i in range(200)])  # 800 bytes: one full chunk, one padded
    texts = serialize_stream(raw, "hex-space", 4)
    assert len(texts) == 2
    assert all(len(t.split(" ")) == 128 for t in texts)
    assert texts[1].endswith(" 00000000")  # the zero padding
    assert b"".join(deserialize(t, "hex-space", 4) for t in texts)[:len(raw)] == raw
