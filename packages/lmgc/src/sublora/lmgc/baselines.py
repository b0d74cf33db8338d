"""The classical codecs LM-GC is compared with, on the same raw bytes.

Each codec compresses the whole stream once ("whole") and every 512-byte chunk on its own
("chunked", the last chunk zero-padded, as the LM sees them); rate = 100 x compressed bytes /
raw bytes, where raw bytes is the length of the stream as given (the padding is the chunked
codecs' cost). Settings are the reference's: gzip level 9, lzma's default preset, PNG as an 8-bit
grayscale image of the nearest-to-square factorization of the byte count (optimize=True), FLAC
as 8-bit mono PCM at 16 kHz (libsndfile's strongest level), fpzip lossless (precision 0) on the
bytes read as float32; plus bz2 (level 9) and zstd (level 19). A codec whose package is not
installed is a row saying so (``pip install "sublora-lmgc[baselines]"``), never an error.
Every codec has a decompressor, and the tests round-trip each one.
"""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import io
import lzma
import math
from collections.abc import Callable
from dataclasses import dataclass

from sublora.lmgc.serialize import CHUNK, chunks

INSTALL_HINT = 'pip install "sublora-lmgc[baselines]"'


@dataclass(frozen=True)
class Codec:
    name: str
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes, int], bytes]  #: (compressed, raw length) -> raw
    package: str | None = None  #: the import it needs beyond the standard library
    settings: str = ""

    def available(self) -> bool:
        return self.package is None or importlib.util.find_spec(self.package) is not None

    def unusable(self, raw: bytes) -> str | None:
        """Why this codec cannot take ``raw`` (None when it can)."""
        if self.name == "fpzip" and len(raw) % 4:
            return f"n/a: {len(raw)} bytes are not float32 values"
        return None


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=19).compress(data)


def _unzstd(data: bytes, length: int) -> bytes:
    import zstandard

    return zstandard.ZstdDecompressor().decompress(data, max_output_size=length)


def nearest_square(n: int) -> tuple[int, int]:
    """(a, n // a) with a the largest divisor of n not above sqrt(n), as the reference factors a PNG."""
    a = max(math.isqrt(n), 1)
    while n % a:
        a -= 1
    return a, n // a


def _png(data: bytes) -> bytes:
    from PIL import Image

    image = Image.frombytes("L", nearest_square(len(data)), data)  # size = (width, height)
    with io.BytesIO() as buffer:
        image.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()


def _unpng(data: bytes, length: int) -> bytes:
    from PIL import Image

    return Image.open(io.BytesIO(data)).tobytes()


def _flac(data: bytes) -> bytes:
    import numpy as np
    import soundfile

    # unsigned bytes as signed 8-bit samples (b - 128), handed to libsndfile as 16-bit values
    samples = (np.frombuffer(data, np.uint8).astype(np.int16) - 128) << 8
    with io.BytesIO() as buffer:
        soundfile.write(buffer, samples, 16000, format="FLAC", subtype="PCM_S8", compression_level=1.0)
        return buffer.getvalue()


def _unflac(data: bytes, length: int) -> bytes:
    import numpy as np
    import soundfile

    samples, _ = soundfile.read(io.BytesIO(data), dtype="int16")
    return ((samples >> 8) + 128).astype(np.uint8).tobytes()


def _fpzip(data: bytes) -> bytes:
    import fpzip
    import numpy as np

    return fpzip.compress(np.frombuffer(data, "<f4").copy(), precision=0, order="C")


def _unfpzip(data: bytes, length: int) -> bytes:
    import fpzip
    import numpy as np

    return np.ascontiguousarray(fpzip.decompress(data, order="C"), "<f4").tobytes()


CODECS: dict[str, Codec] = {c.name: c for c in (
    Codec("gzip", _gzip, lambda d, n: gzip.decompress(d), settings="level 9"),
    Codec("lzma", lzma.compress, lambda d, n: lzma.decompress(d), settings="xz, default preset"),
    Codec("bz2", lambda d: bz2.compress(d, 9), lambda d, n: bz2.decompress(d), settings="level 9"),
    Codec("zstd", _zstd, _unzstd, package="zstandard", settings="level 19"),
    Codec("png", _png, _unpng, package="PIL", settings="8-bit grayscale, nearest-to-square, optimize"),
    Codec("flac", _flac, _unflac, package="soundfile", settings="8-bit mono PCM, 16 kHz, level 8"),
    Codec("fpzip", _fpzip, _unfpzip, package="fpzip", settings="float32, precision 0 (lossless)"),
)}
MODES = ("whole", "chunked")


def compressed_size(codec: Codec, raw: bytes, mode: str) -> int:
    """Bytes ``codec`` needs for ``raw``: one stream ("whole") or the sum over its 512-byte chunks ("chunked")."""
    if mode == "whole":
        return len(codec.compress(raw))
    if mode == "chunked":
        return sum(len(codec.compress(c)) for c in chunks(raw, CHUNK))
    raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


def rates(raw: bytes, codecs: list[str] | None = None, modes: tuple[str, ...] = MODES) -> list[dict]:
    """One row per codec x mode: {codec, mode, bytes, rate, status, settings}; rate = 100 x bytes / len(raw).

    ``status`` is "ok", "not installed (...)" or "n/a: ..." (bytes and rate None then).
    """
    raw = bytes(raw)
    rows = []
    for name in codecs or list(CODECS):
        codec = CODECS[name]
        for mode in modes:
            row = {"codec": name, "mode": mode, "bytes": None, "rate": None, "settings": codec.settings}
            if not codec.available():
                row["status"] = f"not installed ({INSTALL_HINT})"
            elif not raw:
                row["status"] = "n/a: no bytes"
            elif why := codec.unusable(raw):
                row["status"] = why
            else:
                size = compressed_size(codec, raw, mode)
                row.update(bytes=size, rate=100.0 * size / len(raw), status="ok")
            rows.append(row)
    return rows


def round_trip(name: str, raw: bytes) -> bool:
    """Whether codec ``name`` gives ``raw`` back exactly."""
    codec = CODECS[name]
    return codec.decompress(codec.compress(raw), len(raw)) == raw
