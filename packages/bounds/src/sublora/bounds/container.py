"""The compressed-model file: the exact bits the bound pays for.

Layout (all integers little-endian)::

    b"SLC1"                                   magic, 4 bytes
    per tensor, in the order given:
        levels                                1 byte  (codebook size, 1..255)
        codebook                              2 * levels bytes, float16
        payload length                        4 bytes, uint32
        payload                               the coder's bytes (see ``Coder.encode``)
    CRC32 of every byte above                 4 bytes

Tensor names, lengths and the coder spec are not stored: they come from the
run's config, which the bound pays for through hyperparameter bits, and are
passed back to ``read_compressed``. Bits charged = 8 * file size.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from sublora.core.coder import Coder
from sublora.core.errors import VerificationError
from sublora.core.quantizer import QuantizedVector

MAGIC = b"SLC1"


def encode_compressed(tensors: dict[str, QuantizedVector], coder: Coder) -> bytes:
    """The file's bytes for ``tensors`` (in dict order)."""
    parts = [MAGIC]
    for name, q in tensors.items():
        codebook = np.asarray(q.codebook, dtype=np.float16).ravel()
        levels = codebook.size
        if not 1 <= levels <= 255:
            raise ValueError(f"Tensor {name!r}: codebook has {levels} entries; the file stores 1..255.")
        payload = coder.encode(np.asarray(q.symbols).ravel(), levels)
        parts += [struct.pack("<B", levels), codebook.astype("<f2").tobytes()]
        parts += [struct.pack("<I", len(payload)), payload]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def decode_compressed(
    data: bytes, shapes: dict[str, int], coder: Coder, source: str = "compressed model"
) -> dict[str, QuantizedVector]:
    """Parse and decode file bytes; any mismatch raises ``VerificationError``."""
    hint = "The file is corrupt or belongs to another run; recompress the model from its checkpoint."
    if len(data) < len(MAGIC) + 4:
        raise VerificationError(f"{source}: truncated ({len(data)} bytes).", hint=hint)
    if data[: len(MAGIC)] != MAGIC:
        raise VerificationError(f"{source}: bad magic {data[:4]!r}, expected {MAGIC!r}.", hint=hint)
    body, (stored_crc,) = data[:-4], struct.unpack("<I", data[-4:])
    computed = zlib.crc32(body)
    if computed != stored_crc:
        raise VerificationError(
            f"{source}: CRC32 mismatch (stored {stored_crc:08x}, computed {computed:08x}).", hint=hint
        )

    out: dict[str, QuantizedVector] = {}
    pos = len(MAGIC)

    def take(count: int, what: str) -> bytes:
        nonlocal pos
        if pos + count > len(body):
            raise VerificationError(f"{source}: truncated while reading {what}.", hint=hint)
        chunk = body[pos : pos + count]
        pos += count
        return chunk

    for name, length in shapes.items():
        (levels,) = struct.unpack("<B", take(1, f"{name!r} levels"))
        if levels == 0:
            raise VerificationError(f"{source}: tensor {name!r} has an empty codebook.", hint=hint)
        codebook = np.frombuffer(take(2 * levels, f"{name!r} codebook"), dtype="<f2").astype(np.float16)
        (size,) = struct.unpack("<I", take(4, f"{name!r} payload length"))
        payload = take(size, f"{name!r} payload")
        try:
            symbols = coder.decode(payload, int(length), levels)
        except VerificationError as exc:
            raise VerificationError(f"{source}: tensor {name!r}: {exc.message}", hint=hint) from exc
        except Exception as exc:  # noqa: BLE001 - a coder failing on these bytes means they are corrupt
            problem = f"{type(exc).__name__}: {exc}"
            raise VerificationError(f"{source}: tensor {name!r} does not decode: {problem}", hint=hint) from exc
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.shape != (int(length),) or (symbols.size and not 0 <= symbols.min() <= symbols.max() < levels):
            raise VerificationError(f"{source}: tensor {name!r} decodes to symbols outside its codebook.", hint=hint)
        out[name] = QuantizedVector(symbols, codebook)
    if pos != len(body):
        raise VerificationError(f"{source}: {len(body) - pos} unexpected bytes after the last tensor.", hint=hint)
    return out


def write_compressed(path: str | Path, tensors: dict[str, QuantizedVector], coder_spec: str, coder: Coder) -> int:
    """Write the file and return the bits charged (8 * file size).

    The file is decoded again before returning, so the bits charged are the
    bits of a file known to give back exactly these symbols and codebooks.
    ``coder_spec`` (e.g. ``"arithmetic"``) is not stored; it names the coder in errors.
    """
    data = encode_compressed(tensors, coder)
    shapes = {name: int(np.asarray(q.symbols).size) for name, q in tensors.items()}
    decoded = decode_compressed(data, shapes, coder, source=f"freshly encoded model (coder {coder_spec!r})")
    for name, q in tensors.items():
        back = decoded[name]
        codebook = np.asarray(q.codebook, dtype=np.float16).ravel()
        same_codebook = np.array_equal(back.codebook.view(np.uint16), codebook.view(np.uint16))
        if not (same_codebook and np.array_equal(back.symbols, np.asarray(q.symbols).ravel())):
            raise VerificationError(f"Coder {coder_spec!r} does not round-trip tensor {name!r}.")
    path = Path(path)
    path.write_bytes(data)
    return 8 * path.stat().st_size


def read_compressed(path: str | Path, shapes: dict[str, int], coder: Coder) -> dict[str, QuantizedVector]:
    """Read a file written by ``write_compressed``; ``shapes`` maps tensor name -> length, in file order."""
    path = Path(path)
    if not path.is_file():
        raise VerificationError(f"Compressed model {path} does not exist.")
    return decode_compressed(path.read_bytes(), shapes, coder, source=str(path))
