"""Bytes to text and back, as LM-GC serializes numbers for a language model.

The raw stream (float32 bytes in memory order, i.e. little-endian) is cut into 512-byte chunks,
the last one zero-padded (the true length is kept by whoever stores the stream). Each chunk
becomes text: every byte two lowercase hex digits (``hex-*``) or one ISO-8859-1 character
(``iso*``), grouped ``bytes_per_group`` bytes at a time (default 4 = one float32; ``None`` = the
whole chunk is one group), groups joined by the serialization's separator. ``hex-0x`` puts
"0x" before every group. Example: float32 [0.1, 1.0, -0.0025] in hex-space is
``cdcccc3d 0000803f 0ad723bb`` (memory order, not the big-endian IEEE spelling).

``deserialize`` is the exact inverse. It reads the text by position (groups have a known size),
never by splitting on the separator: an ISO character can be the separator itself.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sublora.core.errors import ConfigError, DataError

CHUNK = 512  #: bytes per chunk (128 float32)
DEFAULT_BYTES_PER_GROUP = 4
BYTES_PER_GROUP = (1, 2, 3, 4, 8, None)  #: the values the reference's ablation uses


@dataclass(frozen=True)
class Serialization:
    name: str
    alphabet: str  #: "hex" (two lowercase hex digits per byte) or "iso" (one ISO-8859-1 character per byte)
    separator: str = ""  #: between groups
    prefix: str = ""  #: before every group
    label: str = ""  #: the paper's name, where it has one

    @property
    def chars_per_byte(self) -> int:
        return 2 if self.alphabet == "hex" else 1


SERIALIZATIONS: dict[str, Serialization] = {s.name: s for s in (
    Serialization("hex-none", "hex", label="Hn"),
    Serialization("hex-space", "hex", " ", label="Hs"),
    Serialization("hex-comma", "hex", ",", label="Hc"),
    Serialization("hex-comma+space", "hex", ", ", label="Hc+s"),
    Serialization("hex-semicolon", "hex", ";", label="Hsemi"),
    Serialization("hex-0x", "hex", prefix="0x"),
    Serialization("iso", "iso", label="ISO"),
    Serialization("iso-space", "iso", " "),
    Serialization("iso-comma+space", "iso", ", "),
)}
_HEX = re.compile(r"[0-9a-f]*")


def get_serialization(name: str) -> Serialization:
    """The serialization called ``name``; an unknown name lists the known ones."""
    try:
        return SERIALIZATIONS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), SERIALIZATIONS, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown serialization {name!r}.{guess}",
                          hint=f"Available: {', '.join(SERIALIZATIONS)}.") from None


def check_bytes_per_group(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"bytes per group must be a positive integer or none, not {value!r}.",
                          hint="The reference uses 1, 2, 3, 4 (one float32, the default), 8 or none.")
    return value


def parse_bytes_per_group(text: str | int | None) -> int | None:
    """'4' -> 4, 'none' -> None (the whole chunk is one group)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("none", "")):
        return None
    try:
        return check_bytes_per_group(int(text))
    except (TypeError, ValueError):
        raise ConfigError(f"bytes per group must be a positive integer or 'none', not {text!r}.",
                          hint="The reference uses 1, 2, 3, 4 (one float32, the default), 8 or none.") from None


def chunks(raw: bytes, size: int = CHUNK) -> list[bytes]:
    """``raw`` cut into ``size``-byte chunks, the last zero-padded; no chunks for no bytes."""
    raw = bytes(raw)
    out = [raw[i:i + size] for i in range(0, len(raw), size)]
    if out and len(out[-1]) < size:
        out[-1] = out[-1] + bytes(size - len(out[-1]))
    return out


def unchunk(parts: list[bytes], length: int) -> bytes:
    """The inverse of ``chunks``: the chunks joined and cut back to the true ``length``."""
    data = b"".join(parts)
    if length > len(data):
        raise DataError(f"The chunks hold {len(data)} bytes, fewer than the {length} the stream should have.",
                        hint="The chunk list is incomplete.")
    return data[:length]


def serialize(chunk: bytes, name: str = "hex-space", bytes_per_group: int | None = DEFAULT_BYTES_PER_GROUP) -> str:
    """``chunk`` as text in serialization ``name`` (any length; the reference feeds 512-byte chunks)."""
    s = get_serialization(name)
    check_bytes_per_group(bytes_per_group)
    chunk = bytes(chunk)
    text = chunk.hex() if s.alphabet == "hex" else chunk.decode("latin-1")
    width = len(text) if bytes_per_group is None else bytes_per_group * s.chars_per_byte
    groups = [text[i:i + width] for i in range(0, len(text), width)] if text else []
    return s.separator.join(s.prefix + g for g in groups)


def deserialize(text: str, name: str = "hex-space", bytes_per_group: int | None = DEFAULT_BYTES_PER_GROUP) -> bytes:
    """The bytes ``serialize`` turned into ``text``; malformed text is a DataError naming the position."""
    s = get_serialization(name)
    check_bytes_per_group(bytes_per_group)
    width = None if bytes_per_group is None else bytes_per_group * s.chars_per_byte
    body, pos = [], 0
    while pos < len(text):
        if body and not text.startswith(s.separator, pos):
            _malformed(text, pos, name, f"expected the separator {s.separator!r}")
        pos += len(s.separator) if body else 0
        if not text.startswith(s.prefix, pos):
            _malformed(text, pos, name, f"expected the prefix {s.prefix!r}")
        pos += len(s.prefix)
        rest = len(text) - pos
        # a full group, unless what is left is shorter (the last group may be)
        size = rest if width is None or rest <= width else width
        if size == 0:
            _malformed(text, pos, name, "a group is empty")
        body.append(text[pos:pos + size])
        pos += size
    data = "".join(body)
    if s.alphabet == "hex":
        if len(data) % 2 or not _HEX.fullmatch(data):
            bad = next((i for i, c in enumerate(data) if c not in "0123456789abcdef"), len(data))
            _malformed(text, None, name, f"hex digits must be lowercase 0-9a-f in pairs (problem at digit {bad})")
        return bytes.fromhex(data)
    try:
        return data.encode("latin-1")
    except UnicodeEncodeError as exc:
        _malformed(text, None, name, f"character {data[exc.start]!r} is not ISO-8859-1")
        raise  # unreachable


def _malformed(text: str, pos: int | None, name: str, why: str) -> None:
    where = f" at character {pos}" if pos is not None else ""
    raise DataError(f"The text is not a valid {name} serialization{where}: {why}.",
                    hint="Deserialize with the serialization and bytes per group it was written with.")


def serialize_stream(raw: bytes, name: str = "hex-space", bytes_per_group: int | None = DEFAULT_BYTES_PER_GROUP,
                     size: int = CHUNK) -> list[str]:
    """Every chunk of ``raw`` serialized: the texts a prior tokenizes one by one."""
    return [serialize(c, name, bytes_per_group) for c in chunks(raw, size)]
