"""Tokenize a stream of documents into one token file, in bounded memory, with an optional worker pool.

Documents are read in the main process (sources are generic iterators), grouped into batches
of about ``BATCH_CHARS`` characters and tokenized by ``workers`` processes. Results are taken in
submission order, so the token file is byte-identical for any number of workers, and at most
``2 * workers`` batches are in flight, so memory does not grow with the corpus: it is bounded by
a few batches (and by the largest single document, which is tokenized whole).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from sublora.core.errors import DataError, SubloraError

#: Characters of text per batch sent to a worker: large enough to amortise the hand-over,
#: small enough that a few batches in flight stay a few MB.
BATCH_CHARS = 1 << 20
#: Batches in flight per worker (being tokenized or waiting to be written).
IN_FLIGHT_PER_WORKER = 2

_PROGRESS_SECONDS = 0.1

# The tokenizer of a worker process.
_TOKENIZER = None
_DTYPE: np.dtype | None = None


@dataclass
class Tally:
    """What was written so far: tokens per kept document (its eot included), empty documents skipped."""

    lengths: list[np.ndarray] = field(default_factory=list)
    kept: int = 0
    empty: int = 0

    def doc_lengths(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)


def check_workers(workers: int) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise DataError(f"The number of tokenizer workers must be a whole number >= 1 (got {workers!r}).",
                        hint="Pass --workers 1 (tokenize in this process) or more (one process each).")
    return workers


def _init_worker(tokenizer_config, dtype_name: str) -> None:
    global _TOKENIZER, _DTYPE
    _TOKENIZER = tokenizer_config.build()
    _DTYPE = np.dtype(dtype_name)


def _worker_batch(docs: list[tuple[str, str]]) -> tuple[bytes, np.ndarray, tuple | None]:
    return encode_batch(_TOKENIZER, _DTYPE, docs)


def encode_batch(tokenizer, dtype: np.dtype, docs: list[tuple[str, str]]) -> tuple[bytes, np.ndarray, tuple | None]:
    """Tokens + eot of every non-empty document as one ``dtype`` buffer, and each document's length
    (0 for an empty one). An error is returned, not raised, so its hint survives the trip back."""
    parts: list[np.ndarray] = []
    lengths = np.zeros(len(docs), dtype=np.int64)
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    for i, (doc_id, text) in enumerate(docs):
        try:
            ids = tokenizer.encode(text)
        except SubloraError as exc:
            return b"", lengths, (type(exc), exc.message, exc.hint)
        if ids.size == 0:
            continue
        if ids.min() < 0 or ids.max() >= tokenizer.vocab_size:
            message = (f"Tokenizer '{tokenizer.name}' produced ids outside 0..{tokenizer.vocab_size - 1} "
                       f"for document {doc_id!r}.")
            return b"", lengths, (DataError, message, "The tokenizer plugin is broken; report it.")
        parts.append(ids.astype(dtype))
        parts.append(eot)
        lengths[i] = ids.size + 1
    return (np.concatenate(parts).tobytes() if parts else b""), lengths, None


class _InProcess:
    """workers == 1: the same batch function, called directly (nothing pickled)."""

    def __init__(self, tokenizer, dtype: np.dtype):
        self.tokenizer, self.dtype = tokenizer, dtype

    def submit(self, batch):
        result = encode_batch(self.tokenizer, self.dtype, batch)
        return lambda: result

    def close(self) -> None:
        pass


class _Pool:
    """workers > 1: spawned processes (no fork of a threaded parent), each building its own tokenizer.

    A process pool executor, not multiprocessing.Pool: a worker that dies (out of memory) breaks
    the pool with an error instead of leaving the parent waiting forever.
    """

    def __init__(self, tokenizer_config, dtype: np.dtype, workers: int):
        self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_init_worker, initargs=(tokenizer_config, dtype.name))

    def submit(self, batch):
        future = self.executor.submit(_worker_batch, batch)

        def result():
            try:
                return future.result()
            except BrokenProcessPool as exc:
                raise DataError("A tokenizer worker process stopped: killed, out of memory, or it could not start "
                                "(a script that prepares data with workers > 1 needs the "
                                "`if __name__ == '__main__':` guard).",
                                hint="Rerun with fewer workers; nothing was written.") from exc
        return result

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def tokenize_to_file(documents: Iterator[tuple[str, str]], tokenizer, tokenizer_config, dtype: np.dtype, fh: BinaryIO,
                     workers: int = 1, max_documents: int | None = None,
                     progress: Callable[[int], None] | None = None) -> Tally:
    """Write every non-empty document's tokens + eot to ``fh`` in ``documents`` order.

    With ``max_documents``, stops after that many non-empty documents and never reads a document
    past the last one kept (a source's skipped-file count and errors are as without batching).
    ``progress(documents seen)`` is called after each written batch, throttled.
    """
    check_workers(workers)
    encoder = _InProcess(tokenizer, dtype) if workers == 1 else _Pool(tokenizer_config, dtype, workers)
    tally, pending = Tally(), deque()
    last = 0.0

    def take() -> None:
        nonlocal last
        blob, lengths, error = pending.popleft()()
        if error is not None:
            kind, message, hint = error
            raise kind(message, hint=hint)
        nonzero = np.flatnonzero(lengths)
        if max_documents is not None and tally.kept + len(nonzero) >= max_documents:
            cut = int(nonzero[max_documents - tally.kept - 1]) + 1  # documents up to the last one kept
            lengths = lengths[:cut]
            blob = blob[:int(lengths.sum()) * dtype.itemsize]
            nonzero = nonzero[nonzero < cut]
        fh.write(blob)
        tally.lengths.append(lengths[nonzero])
        tally.kept += len(nonzero)
        tally.empty += len(lengths) - len(nonzero)
        if progress is not None and time.monotonic() - last >= _PROGRESS_SECONDS:
            progress(tally.kept + tally.empty)
            last = time.monotonic()

    def drain() -> None:
        while pending:
            take()

    try:
        batch: list[tuple[str, str]] = []
        chars = read = 0
        docs = iter(documents)
        while True:
            if max_documents is not None and read - tally.empty >= max_documents:
                # Every document read so far may be non-empty: learn how many were before reading on.
                if batch:
                    pending.append(encoder.submit(batch))
                    batch, chars = [], 0
                drain()
                if tally.kept >= max_documents:
                    break
                continue
            doc = next(docs, None)
            if doc is None:
                break
            batch.append(doc)
            read += 1
            chars += len(doc[1])
            if chars >= BATCH_CHARS:
                pending.append(encoder.submit(batch))
                batch, chars = [], 0
                while len(pending) > IN_FLIGHT_PER_WORKER * workers:
                    take()
        if batch:
            pending.append(encoder.submit(batch))
        drain()
    finally:
        encoder.close()
    return tally


def copy_runs(src: Path, runs: list[tuple[int, int, Any]], sinks: dict[Any, BinaryIO],
              digests: dict[Any, Any], chunk: int = 8 << 20) -> None:
    """Copy byte ranges ``[start, end)`` of ``src``, given in increasing order, to ``sinks[key]``,
    updating ``digests[key]``: one sequential read with plain reads (no memmap, whose pages would
    count as resident memory)."""
    with open(src, "rb") as fh:
        for start, end, key in runs:
            fh.seek(start)
            left = end - start
            while left:
                block = fh.read(min(chunk, left))
                if not block:
                    raise DataError(f"{src} ended early while splitting it.", hint="Rerun `sublora data prepare`.")
                sinks[key].write(block)
                digests[key].update(block)
                left -= len(block)
