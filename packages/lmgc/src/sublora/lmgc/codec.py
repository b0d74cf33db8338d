"""LM-GC coding: bytes -> text -> tokens -> range-coded bits with a prior's probabilities, and back.

Encode: the raw float32 stream is cut into 512-byte chunks, each serialized and tokenized on its
own; the ids of all chunks form one stream, cut into windows of ``window - 1`` tokens with a BOS in
front. One forward pass per window gives the next-token logits; every token is range-coded
(constriction's RangeEncoder, Categorical(perfect=False): 24-bit fixed point, every symbol at least
one unit) with p = (1 - floor) softmax(logits) + floor / V, so no token is uncodable.

Decode rebuilds the same probabilities bit for bit, which is the whole difficulty (a trap of the
reference): the decoder sees token t only after decoding it, so it runs the window again for every
token, with the positions not yet known filled with ``pad``. The network is causal, every call has
the same shape (1, window), so row t depends only on tokens < t and is computed by the same kernels
on the same numbers as in the encoder's single pass. The softmax and floor are computed row by row
(a fresh (V,) tensor) on both sides, never on a whole matrix whose vectorized loops could split
rows differently. Decoding therefore costs ``window - 1`` forward passes per window where encoding
costs one (docs/lmgc.md, "Coding"). With ``context: cache`` both sides instead step a KV cache
(``sublora.lmgc.stepper``) one token at a time, restarted at each window's BOS: the same calls in the
same order on both sides, so equally exact, and one step per token either way.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sublora.core.errors import ConfigError, DataError
from sublora.lmgc.errors import DecodeError, EmptyInputError, NotFloat32Error, PriorError
from sublora.lmgc.serialize import (
    CHUNK,
    SERIALIZATIONS,
    DEFAULT_BYTES_PER_GROUP,
    check_bytes_per_group,
    chunks,
    deserialize,
    get_serialization,
    serialize,
    unchunk,
)

PRECISION = 24  #: bits of constriction's fixed-point probabilities (its Categorical default)
CODER = "constriction.stream.queue.RangeEncoder + model.Categorical(perfect=False)"
Progress = Callable[[int, int], None]  #: progress(tokens done, tokens in all)


class CodecSettings(BaseModel):
    """How a stream is coded; every field goes into the container header."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serialization: str = Field("hex-space", description="How bytes become text (docs/lmgc.md, 'Serialize').")
    bytes_per_group: int | None = Field(DEFAULT_BYTES_PER_GROUP, description="Bytes per group; None: one group.")
    window: int | None = Field(None, ge=2, description="Tokens per window, BOS included; None: 2048 or the "
                               "prior's context if shorter.")
    floor: float = Field(1e-4, gt=0.0, lt=0.5, description="Probability mass spread uniformly over the vocabulary: "
                         "every token gets at least floor / V.")
    context: Literal["window", "cache"] = Field(
        "window", description="window: one forward pass per window to encode, window - 1 to decode; cache: a KV "
        "cache on both sides (GPT-2 priors), one incremental step per token either way (encoding slower, decoding "
        "far faster). The same windows and contexts; the logits differ in the last bits, so the header records it.")

    @field_validator("serialization")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in SERIALIZATIONS:
            raise ValueError(f"unknown serialization {v!r}; available: {', '.join(SERIALIZATIONS)}")
        return v

    @field_validator("bytes_per_group")
    @classmethod
    def _group(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("bytes per group must be a positive integer or None")
        return v

    @classmethod
    def make(cls, **fields: Any) -> CodecSettings:
        """Validated settings; a bad value is a ConfigError naming it (did-you-mean for a serialization)."""
        from pydantic import ValidationError

        from sublora.core.component import validation_message

        if "serialization" in fields:
            get_serialization(fields["serialization"])
        if "bytes_per_group" in fields:
            check_bytes_per_group(fields["bytes_per_group"])
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise ConfigError(f"Invalid coding settings: {validation_message(exc)}.") from exc


def check_raw(raw: bytes, name: str = "the input") -> None:
    """A stream LM-GC can code: float32 values, at least one."""
    if not raw:
        raise EmptyInputError(f"{name} is empty: there is no float32 value to compress.",
                              hint="Give a file of float32 values (a raw .f32 file or a gradient directory).")
    if len(raw) % 4:
        raise NotFloat32Error(f"{name} holds {len(raw):,} bytes, not a whole number of float32 values "
                              f"({len(raw) % 4} byte(s) left over).",
                              hint="LM-GC codes float32 streams: give a raw little-endian float32 file or a "
                              "gradient directory (sublora lmgc collect).")


def probabilities(logits_row, floor: float) -> np.ndarray:
    """(V,) float64 coding distribution of one logits row: softmax in float64, then the floor.

    The one definition the encoder and the decoder share; always called on one row.
    """
    import torch

    row = logits_row.detach().to(torch.float64).contiguous().clone()
    p = torch.softmax(row, dim=0)
    return ((1.0 - floor) * p + floor / p.numel()).numpy()


def tokenize(prior, texts: list[str]) -> list[list[int]]:
    """Ids of every chunk's text, each chunk on its own; refuses a tokenizer that does not give the text back."""
    out = []
    for i, text in enumerate(texts):
        ids = prior.encode(text)
        if not ids:
            raise PriorError(f"The prior's tokenizer gives no token for chunk {i}.")
        if max(ids) >= prior.vocab_size:
            raise PriorError(f"Token id {max(ids)} is beyond the prior's {prior.vocab_size} outputs.",
                             hint="The tokenizer and the model do not belong together.")
        if prior.decode(ids) != text:
            raise PriorError(f"The prior's tokenizer does not give chunk {i}'s text back exactly, so it cannot "
                             "code it losslessly.",
                             hint="Use a hex serialization (plain ASCII), or a tokenizer without normalization.")
        out.append(ids)
    return out


def run_length(counts: list[int]) -> list[list[int]]:
    """[[count, repeats], ...]: tokens per chunk stored compactly (a byte tokenizer gives one pair)."""
    out: list[list[int]] = []
    for c in counts:
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([int(c), 1])
    return out


def expand(pairs: list[list[int]]) -> list[int]:
    return [int(c) for c, n in pairs for _ in range(int(n))]


def windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """(start, length) of every window's coded tokens: ``window - 1`` each, the last shorter."""
    step = window - 1
    return [(s, min(step, n_tokens - s)) for s in range(0, n_tokens, step)]


def window_input(tokens: np.ndarray, window: int, bos: int, pad: int) -> np.ndarray:
    """(window,) ids: BOS, the tokens, then pad (the last window, and the decoder's unknown positions)."""
    x = np.full(window, pad, dtype=np.int64)
    x[0] = bos
    x[1:1 + len(tokens)] = tokens
    return x


def encode(raw: bytes, prior, settings: CodecSettings | None = None, progress: Progress | None = None
           ) -> tuple[dict[str, Any], np.ndarray]:
    """(header fields, uint32 words) coding ``raw`` with ``prior``; see the module docstring."""
    import constriction

    settings = settings or CodecSettings()
    check_raw(raw)
    window = prior.window(settings.window)
    texts = [serialize(c, settings.serialization, settings.bytes_per_group) for c in chunks(raw, CHUNK)]
    ids = tokenize(prior, texts)
    stream = np.fromiter((t for chunk in ids for t in chunk), dtype=np.int64)
    spans = windows(len(stream), window)
    family = constriction.stream.model.Categorical(perfect=False)
    encoder = constriction.stream.queue.RangeEncoder()
    ideal = 0.0
    start_time = time.perf_counter()
    rows = _window_rows if settings.context == "window" else _cached_rows(prior, window)
    for k, (start, n) in enumerate(spans):
        piece = stream[start:start + n]
        table = np.stack([probabilities(row, settings.floor) for row in rows(prior, piece, window)])
        encoder.encode(piece.astype(np.int32), family, table)
        ideal += float(-np.log2(table[np.arange(n), piece]).sum())
        if progress is not None:
            progress(start + n, len(stream))
    seconds = time.perf_counter() - start_time
    words = np.asarray(encoder.get_compressed(), dtype=np.uint32)
    header = {
        "raw_bytes": len(raw),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "chunk_bytes": CHUNK,
        "chunks": len(texts),
        "serialization": settings.serialization,
        "bytes_per_group": settings.bytes_per_group,
        "tokens": int(len(stream)),
        "tokens_per_chunk": run_length([len(c) for c in ids]),
        "window": window,
        "windows": len(spans),
        "bos": prior.bos_id,
        "pad": prior.pad_id,
        "context": settings.context,
        "coder": {"name": CODER, "precision": PRECISION, "floor": settings.floor,
                  "probabilities": "float64 softmax per row, then (1 - floor) p + floor / V"},
        "bits": {"ideal": ideal, "coded": int(words.size) * 32},
        "encode_seconds": seconds,
    }
    return header, words


def _window_rows(prior, piece: np.ndarray, window: int):
    """The logits rows of a window's tokens from one forward pass over (1, window): ``context: window``."""
    logits = prior.logits(window_input(piece, window, prior.bos_id, prior.pad_id))
    return (logits[t] for t in range(len(piece)))


def _stepper(prior, window: int):
    from sublora.lmgc.stepper import GPT2Stepper

    try:
        return GPT2Stepper(prior, window)
    except PriorError as exc:
        raise PriorError(f"context 'cache' needs a GPT-2 prior: {exc.message}",
                         hint="Use --context window with this prior.") from exc


def _cached_rows(prior, window: int):
    """``context: cache``: each window restarts the cache at BOS, then one incremental step per token, exactly
    the calls the decoder makes (it learns each token only after its row)."""
    stepper = _stepper(prior, window)

    def rows(prior, piece: np.ndarray, window: int):
        stepper.reset()
        for token in piece.tolist():
            yield stepper.logits()
            stepper.feed([int(token)])

    return rows


def decode(header: dict[str, Any], words: np.ndarray, prior, progress: Progress | None = None) -> bytes:
    """The raw bytes of a container's payload; the prior must be the header's (checked by the caller)."""
    import constriction

    window, floor = int(header["window"]), float(header["coder"]["floor"])
    bos, pad = int(header["bos"]), int(header["pad"])
    counts = expand(header["tokens_per_chunk"])
    total = int(header["tokens"])
    if sum(counts) != total or len(counts) != int(header["chunks"]):
        raise DecodeError("The header's token counts do not add up.", hint="The .lmgc file is damaged.")
    family = constriction.stream.model.Categorical(perfect=False)
    decoder = constriction.stream.queue.RangeDecoder(np.asarray(words, dtype=np.uint32))
    ends = np.cumsum(counts).tolist()  # a chunk is checked as soon as its last token is decoded
    stream = np.empty(total, dtype=np.int64)
    parts: list[bytes] = []
    context = header.get("context", "window")  # files written before the setting existed: window
    stepper = _stepper(prior, window) if context == "cache" else None
    for start, n in windows(total, window):
        x = window_input(np.empty(0, dtype=np.int64), window, bos, pad)
        if stepper is not None:
            stepper.reset()
        for t in range(n):
            row = stepper.logits() if stepper is not None else prior.logits(x)[t]
            token = int(decoder.decode(family, probabilities(row, floor)[None, :])[0])
            x[t + 1] = stream[start + t] = token
            if stepper is not None:
                stepper.feed([token])
            while len(parts) < len(ends) and ends[len(parts)] == start + t + 1:
                parts.append(_chunk_bytes(prior, stream, ends, len(parts), header))
            if progress is not None:
                progress(start + t + 1, total)
    raw = unchunk(parts, int(header["raw_bytes"]))
    if hashlib.sha256(raw).hexdigest() != header["raw_sha256"]:
        raise DecodeError("The decoded bytes do not match the original's sha256.", hint=MISMATCH_HINT)
    return raw


def _chunk_bytes(prior, stream: np.ndarray, ends: list[int], i: int, header: dict[str, Any]) -> bytes:
    """Chunk i's bytes from its decoded tokens; text that is not the serialization means wrong probabilities."""
    serialization = header["serialization"]
    start = ends[i - 1] if i else 0
    try:
        data = deserialize(prior.decode(stream[start:ends[i]].tolist()), serialization, header["bytes_per_group"])
    except (PriorError, DataError) as exc:
        raise DecodeError(f"Chunk {i} decodes to text that is not a {serialization} serialization ({exc.message}).",
                          hint=MISMATCH_HINT) from exc
    if len(data) != int(header["chunk_bytes"]):
        raise DecodeError(f"Chunk {i} decodes to {len(data)} bytes, not {header['chunk_bytes']}.", hint=MISMATCH_HINT)
    return data


MISMATCH_HINT = ("The decoder's probabilities differed from the encoder's: decode on the machine, library versions "
                 "and thread count that encoded (docs/lmgc.md, 'What breaks decoding elsewhere').")


def rate(coded_bytes: int, raw_bytes: int) -> float:
    """100 x compressed / raw (%), lower is better."""
    return 100.0 * coded_bytes / raw_bytes if raw_bytes else math.nan
