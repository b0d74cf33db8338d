"""Quantize and code a whole model tensor by tensor into model.slc, and decode it back into a network.

The file is sublora's compressed-model format (``sublora.bounds.container``: magic, per entry levels +
fp16 codebook + payload length + payload, CRC32), written and read one entry at a time so memory stays at
one tensor's symbols, not the model's. An entry is a whole tensor, or one group of ``group_size`` values of
it (per-group quantization: each group has its own codebook). Entries follow ``named_parameters()`` of the
network built from the architecture (tied tensors once); 1-D tensors use ``vector_levels``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sublora.bounds.container import MAGIC
from sublora.core.errors import VerificationError
from sublora.core.quantizer import QuantizedVector, tensor_seed
from sublora.core.registry import registry


@dataclass(frozen=True)
class Entry:
    """One coded unit: values [start, start + length) of tensor ``tensor`` (flattened, row-major)."""

    tensor: str
    start: int
    length: int
    vector: bool  # a 1-D tensor: coded with vector_levels


def entries(net: torch.nn.Module, group_size: int | None) -> list[Entry]:
    """The file's entries, in order, for a network (fixed by its architecture alone)."""
    out = []
    for name, p in net.named_parameters():  # tied tensors appear once
        n, vector = p.numel(), p.dim() <= 1
        step = group_size or n
        out += [Entry(name, s, min(step, n - s), vector) for s in range(0, n, step)]
    return out


def tensor_list(net: torch.nn.Module) -> list[list]:
    """[name, shape] of every coded tensor: recorded in the certificate, checked by verify."""
    return [[name, list(p.shape)] for name, p in net.named_parameters()]


def _quantizers(settings):
    b = settings.bound

    def build(levels: int):
        return registry("quantizer").config(b.quantizer, {**b.quantizer_options, "levels": levels}).build()

    return build(b.levels), build(settings.vector_levels)


class _Writer:
    """Appends entries to the file, keeping the running CRC32 (the same bytes as ``encode_compressed``)."""

    def __init__(self, path: Path):
        self.file = open(path, "wb")
        self.crc = 0
        self._put(MAGIC)

    def _put(self, data: bytes) -> None:
        self.file.write(data)
        self.crc = zlib.crc32(data, self.crc)

    def add(self, q: QuantizedVector, coder, name: str) -> bytes:
        codebook = np.asarray(q.codebook, dtype=np.float16).ravel()
        if not 1 <= codebook.size <= 255:
            raise ValueError(f"Entry {name!r}: codebook has {codebook.size} entries; the file stores 1..255.")
        payload = coder.encode(np.asarray(q.symbols).ravel(), codebook.size)
        self._put(struct.pack("<B", codebook.size) + codebook.astype("<f2").tobytes())
        self._put(struct.pack("<I", len(payload)) + payload)
        return payload

    def close(self) -> None:
        self.file.write(struct.pack("<I", self.crc))
        self.file.close()


@torch.no_grad()
def quantize_and_write(net: torch.nn.Module, settings, coder, path: Path, progress=None) -> dict:
    """Quantize every parameter of ``net`` in place (it becomes the quantized model) and write the file.

    Returns per-file statistics: entries, parameters, bits (8 x file size). Each entry is decoded again right
    after it is coded and compared, so the bits charged are the bits of a file known to give these values.
    """
    matrix_q, vector_q = _quantizers(settings)
    seed = settings.bound.seed
    params = dict(net.named_parameters())
    todo = entries(net, settings.group_size)
    writer = _Writer(path)
    try:
        for i, e in enumerate(todo):
            p = params[e.tensor]
            flat = p.data.view(-1)
            values = flat[e.start: e.start + e.length].double().numpy()
            q = (vector_q if e.vector else matrix_q).quantize(values, seed=tensor_seed(seed, i))
            payload = writer.add(q, coder, e.tensor)
            back = coder.decode(payload, e.length, q.codebook.size)
            if not np.array_equal(np.asarray(back), q.symbols):
                raise VerificationError(f"The coder does not round-trip entry {i} ({e.tensor}).")
            flat[e.start: e.start + e.length] = torch.from_numpy(q.values)
            if progress:
                progress(i + 1, len(todo))
    finally:
        writer.close()
    return {"entries": len(todo), "parameters": int(sum(p.numel() for p in params.values())),
            "code_bits": 8 * path.stat().st_size}


def iter_file(data: bytes, todo: list[Entry], coder, source: str) -> Iterator[tuple[Entry, QuantizedVector]]:
    """Decode the file's entries one at a time (the layout of ``sublora.bounds.container``)."""
    hint = "The file is corrupt or belongs to another model; run `sublora bound-model --force` again."
    if len(data) < len(MAGIC) + 4 or data[: len(MAGIC)] != MAGIC:
        raise VerificationError(f"{source}: not a sublora compressed model (bad magic or truncated).", hint=hint)
    body, (stored,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != stored:
        raise VerificationError(f"{source}: CRC32 mismatch.", hint=hint)
    pos = len(MAGIC)

    def take(count: int, what: str) -> bytes:
        nonlocal pos
        if pos + count > len(body):
            raise VerificationError(f"{source}: truncated while reading {what}.", hint=hint)
        pos += count
        return body[pos - count: pos]

    for i, e in enumerate(todo):
        (levels,) = struct.unpack("<B", take(1, f"entry {i} levels"))
        if levels == 0:
            raise VerificationError(f"{source}: entry {i} ({e.tensor}) has an empty codebook.", hint=hint)
        codebook = np.frombuffer(take(2 * levels, f"entry {i} codebook"), dtype="<f2").astype(np.float16)
        (size,) = struct.unpack("<I", take(4, f"entry {i} payload length"))
        try:
            symbols = np.asarray(coder.decode(take(size, f"entry {i} payload"), e.length, levels), dtype=np.int64)
        except VerificationError:
            raise
        except Exception as exc:  # noqa: BLE001 - a coder failing on these bytes means they are corrupt
            raise VerificationError(f"{source}: entry {i} ({e.tensor}) does not decode: {exc}", hint=hint) from exc
        if symbols.shape != (e.length,) or (symbols.size and not 0 <= symbols.min() <= symbols.max() < levels):
            raise VerificationError(f"{source}: entry {i} ({e.tensor}) decodes to symbols outside its codebook.",
                                    hint=hint)
        yield e, QuantizedVector(symbols, codebook)
    if pos != len(body):
        raise VerificationError(f"{source}: {len(body) - pos} unexpected bytes after the last entry.", hint=hint)


@torch.no_grad()
def read_into(net: torch.nn.Module, path: Path, group_size: int | None, coder) -> None:
    """Load the decoded file into ``net``'s parameters, entry by entry: the certified model."""
    params = dict(net.named_parameters())
    for e, q in iter_file(Path(path).read_bytes(), entries(net, group_size), coder, str(path)):
        params[e.tensor].data.view(-1)[e.start: e.start + e.length] = torch.from_numpy(q.values)
