"""Local files as documents: strict UTF-8 reading and the cheap fingerprint of a file listing.

A binary or non-UTF-8 file decoded with ``errors="replace"`` becomes a run of
U+FFFD that the model then learns; such files are skipped and counted (or
refused, by the source's ``undecodable`` option) instead.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sublora.core.errors import DataError

_CHUNK = 1 << 20


def undecodable_reason(data: bytes) -> str | None:
    """Why ``data`` is not a text document (NUL bytes, invalid UTF-8), or None when it is one."""
    nul = data.find(b"\x00")
    if nul >= 0:
        return f"holds a NUL byte at offset {nul} (a binary file)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    return None


def file_undecodable_reason(path: Path) -> str | None:
    """``undecodable_reason`` of a file, read in chunks (for large .jsonl files)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(_CHUNK)
            nul = block.find(b"\x00")
            if nul >= 0:
                return f"holds a NUL byte at offset {offset + nul} (a binary file)"
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return f"is not valid UTF-8 (near offset {offset + exc.start})"
            if not block:
                return None
            offset += len(block)


def refuse(path: Path, reason: str) -> DataError:
    return DataError(
        f"{path} {reason}.",
        hint="Remove it, narrow data.source_options.extensions, or set data.source_options.undecodable=skip "
        "to leave such files out (they are counted in meta.json).",
    )


def read_document(path: Path, doc_id: str, policy: str, skipped: list[str]) -> str | None:
    """The file's text; None (its id appended to ``skipped``) when it is not text and policy is 'skip'."""
    data = path.read_bytes()
    reason = undecodable_reason(data)
    if reason is None:
        return data.decode("utf-8")
    if policy == "refuse":
        raise refuse(path, reason)
    skipped.append(doc_id)
    return None


def listing_fingerprint(files: Iterable[tuple[str, Path]]) -> dict[str, Any]:
    """sha256 over one ``name<TAB>size<TAB>mtime_ns`` line per ``(name, path)``, in the order given.

    Sizes and modification times, not contents: cheap enough to check on every run (the standard
    library's ~700 files: ~30 ms), and any edit changes the mtime. Touching a file without changing
    it only costs one re-preparation.
    """
    digest = hashlib.sha256()
    n_files, n_bytes = 0, 0
    for name, path in files:
        st = path.stat()
        digest.update(f"{name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        n_files += 1
        n_bytes += st.st_size
    return {"files": n_files, "bytes": n_bytes, "listing_sha256": digest.hexdigest()}
