"""The .lmgc file: a header holding everything the decoder needs, then the range coder's words.

    bytes 0-7     magic b"SLMGC\\x00\\x01\\n"
    bytes 8-15    header length n (uint64, little-endian)
    next n bytes  header: UTF-8 JSON, sorted keys (format, input, raw length and sha256, chunking,
                  serialization, tokens per chunk, window, BOS and pad ids, prior spec and identity,
                  coder settings, environment, payload length and sha256, ideal and coded bits)
    the rest      payload: the range coder's uint32 words, little-endian

A truncated or altered file is refused before any decoding (lengths and the payload's sha256); a
prior other than the header's is refused by identity; the environment the encoder ran in (torch,
transformers and constriction versions, CPU kernels, thread count, dtype) is compared with the
decoder's, because the same model can give other probabilities under other kernels.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from sublora.lmgc.errors import ContainerError, EnvironmentMismatchError, PriorMismatchError

MAGIC = b"SLMGC\x00\x01\n"
FORMAT = "sublora-lmgc/1"
#: environment fields whose change can change the probabilities bit-wise (threads are set, not compared)
BIT_RELEVANT = ("torch", "transformers", "constriction", "cpu_capability", "machine")
#: what a decoder reads from the header
REQUIRED = ("raw_bytes", "raw_sha256", "chunk_bytes", "chunks", "serialization", "bytes_per_group", "tokens",
            "tokens_per_chunk", "window", "windows", "bos", "pad", "coder", "prior", "environment", "payload")


def environment(threads: int) -> dict[str, Any]:
    """What the probabilities depend on beyond the prior: library versions, CPU kernels, threads."""
    import constriction  # noqa: F401 - its version is read below
    import torch

    from importlib import metadata

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    return {
        "torch": torch.__version__,
        "transformers": version("transformers"),
        "constriction": version("constriction"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": int(threads),
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
    }


def environment_differences(recorded: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """``field: encoder -> here`` for every bit-relevant field that differs."""
    return [f"{k}: {recorded.get(k)} -> {here.get(k)}" for k in BIT_RELEVANT if recorded.get(k) != here.get(k)]


def check_environment(recorded: dict[str, Any], here: dict[str, Any], allow: bool = False) -> list[str]:
    """Refuse (or, with ``allow``, return as warnings) the differences that can change the probabilities."""
    diffs = environment_differences(recorded, here)
    if diffs and not allow:
        raise EnvironmentMismatchError(
            "This file was encoded under another environment, which can change the probabilities bit-wise and "
            f"make the stream decode to garbage: {'; '.join(diffs)}.",
            hint="Decode where it was encoded, or pass --allow-mismatch to try anyway (the sha256 check at the "
            "end still refuses wrong bytes).")
    return diffs


def check_prior(header: dict[str, Any], prior) -> None:
    """Refuse a prior whose identity is not the header's, before decoding anything."""
    want = header["prior"]
    if prior.identity != want["identity"]:
        raise PriorMismatchError(
            f"The prior {prior.spec} is not the one this file was coded with (identity {prior.identity[:12]} != "
            f"{want['identity'][:12]}; it was {want['spec']}, {want.get('dtype')}).",
            hint="Decode with the same prior (same weights, tokenizer and --dtype); a retrained or edited run "
            "is another prior.")


def pack(header: dict[str, Any], words: np.ndarray) -> bytes:
    """The file's bytes (the caller writes them atomically)."""
    payload = np.asarray(words, dtype="<u4").tobytes()
    header = {**header, "format": FORMAT,
              "payload": {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}}
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + len(text).to_bytes(8, "little") + text + payload


def read(path: str | Path) -> tuple[dict[str, Any], np.ndarray]:
    """(header, uint32 words) of a .lmgc file; ContainerError if it is not one, truncated or altered."""
    path = Path(path)
    data = path.read_bytes()
    hint = "The file is damaged or incomplete: compress the original again."
    if len(data) < len(MAGIC) + 8:
        if MAGIC.startswith(data[:len(MAGIC)]) and data:
            raise ContainerError(f"{path} is truncated ({len(data)} bytes: not even a header).", hint=hint)
        raise ContainerError(f"{path} is not a .lmgc file (no LM-GC magic bytes).",
                             hint="Give a file written by `sublora lmgc compress`.")
    if data[:len(MAGIC)] != MAGIC:
        raise ContainerError(f"{path} is not a .lmgc file (no LM-GC magic bytes).",
                             hint="Give a file written by `sublora lmgc compress`.")
    n = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "little")
    start = len(MAGIC) + 8
    if start + n > len(data):
        raise ContainerError(f"{path} is truncated: its header needs {n:,} bytes, {len(data) - start:,} are there.",
                             hint=hint)
    try:
        header = json.loads(data[start:start + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContainerError(f"{path}: the header is not valid JSON ({exc}).", hint=hint) from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ContainerError(f"{path}: unknown format {header.get('format') if isinstance(header, dict) else None!r}.",
                             hint=f"This sublora reads {FORMAT}.")
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise ContainerError(f"{path}: the header lacks {', '.join(missing)}.", hint=hint)
    payload = data[start + n:]
    want = header["payload"]
    if len(payload) != want.get("bytes"):
        what = "truncated" if len(payload) < want.get("bytes", 0) else "longer than its header says"
        raise ContainerError(f"{path} is {what}: the payload has {len(payload):,} bytes, the header says "
                             f"{want.get('bytes'):,}.", hint=hint)
    if hashlib.sha256(payload).hexdigest() != want.get("sha256"):
        raise ContainerError(f"{path}: the payload does not match the header's sha256 (the file was altered).",
                             hint=hint)
    return header, np.frombuffer(payload, dtype="<u4").astype(np.uint32)
