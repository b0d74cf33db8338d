"""Turn a source + tokenizer into a prepared data directory, atomically.

Documents are split into train/val by document (not by token), so the
document-level bound samples whole held-in documents. Everything is written
into a temporary sibling directory and renamed into place at the end: a
crash never leaves a half-written directory that looks valid.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sublora.core.config import DataConfig
from sublora.core.data.dataset import (BIN_FILES, DOC_LENGTHS_FILE, EOT_FILES, META_FILE, PreparedData,
                                       file_sha256, token_dtype)
from sublora.core.data.location import FORMAT_VERSION, config_key, default_data_dir
from sublora.core.errors import DataError
from sublora.core.registry import registry

Progress = Callable[[int, "int | None"], None]

_PROGRESS_SECONDS = 0.1


def split_documents(n_documents: int, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the val documents: a seeded random ``val_fraction`` share, at least one per split."""
    if n_documents < 2:
        raise DataError(f"The corpus has {n_documents} non-empty document(s); a train/val split needs at least 2.",
                        hint="Point the source at more data, or raise data.max_documents.")
    n_val = min(n_documents - 1, max(1, round(n_documents * val_fraction)))
    is_val = np.zeros(n_documents, dtype=bool)
    is_val[np.random.default_rng(seed).permutation(n_documents)[:n_val]] = True
    return is_val


def prepare_data(config: DataConfig, out_dir: str | Path, progress: Progress | None = None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Tokenize, split and write ``out_dir``; return its meta.json contents.

    ``progress(done, total)`` is called while documents are tokenized; ``total`` is
    None when the source cannot count its documents up front.
    """
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise DataError(f"Data directory {str(out_dir)!r} already exists and is not empty.",
                        hint="Pass overwrite (`sublora data prepare --overwrite`) or choose another data.dir.")
    source_config = registry("source").config(config.source, config.source_options)
    tokenizer_config = registry("tokenizer").config(config.tokenizer, config.tokenizer_options)
    source = source_config.build()
    tokenizer = tokenizer_config.build()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        meta = _write(config, source, tokenizer, tmp, progress)
        meta["source"] = {"spec": source_config.spec,
                          "options": source_config.model_dump(mode="json", exclude={"variant"}),
                          "describe": source.describe()}
        meta["tokenizer"] = {"spec": tokenizer_config.spec,
                             "options": tokenizer_config.model_dump(mode="json", exclude={"variant"})}
        text = json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n"
        (tmp / META_FILE).write_text(text, encoding="utf-8")
        _move_into_place(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return json.loads(text)  # exactly what meta.json holds (tuples become lists)


def _write(config: DataConfig, source, tokenizer, tmp: Path, progress: Progress | None) -> dict[str, Any]:
    dtype = token_dtype(tokenizer.vocab_size)
    eot = np.array([tokenizer.eot_id], dtype=dtype)
    lengths, skipped = _tokenize_all(config, source, tokenizer, tmp / "all.bin", dtype, eot, progress)
    if not lengths:
        raise DataError(f"The source '{config.source}' yielded no non-empty documents.",
                        hint="Check data.source and data.source_options (e.g. the path holds text files).")
    lengths = np.asarray(lengths, dtype=np.int64)  # tokens per document, its eot included
    is_val = split_documents(len(lengths), config.val_fraction, config.split_seed)

    ends = np.cumsum(lengths)
    starts = ends - lengths
    all_tokens = np.memmap(tmp / "all.bin", dtype=dtype, mode="r")
    counts: dict[str, dict[str, int]] = {"n_documents": {}, "n_tokens": {}}
    hashes = {}
    for split, mask in (("train", ~is_val), ("val", is_val)):
        with open(tmp / BIN_FILES[split], "wb") as fh:
            for start, end in zip(starts[mask].tolist(), ends[mask].tolist()):
                fh.write(all_tokens[start:end].tobytes())
        split_lengths = lengths[mask]
        np.save(tmp / EOT_FILES[split], np.cumsum(split_lengths) - 1)
        if split == "train":
            np.save(tmp / DOC_LENGTHS_FILE, split_lengths)
        counts["n_documents"][split] = int(mask.sum())
        counts["n_tokens"][split] = int(split_lengths.sum())
        hashes[BIN_FILES[split]] = file_sha256(tmp / BIN_FILES[split])
    del all_tokens
    (tmp / "all.bin").unlink()
    return {
        "format_version": FORMAT_VERSION,
        "config_key": config_key(config),
        "vocab_size": int(tokenizer.vocab_size),
        "eot_id": int(tokenizer.eot_id),
        "dtype": dtype.name,
        **counts,
        "skipped_empty_documents": skipped,
        "split_seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "max_documents": config.max_documents,
        "sha256": hashes,
    }


def _tokenize_all(config, source, tokenizer, path: Path, dtype, eot, progress) -> tuple[list[int], int]:
    """Write every non-empty document + eot to ``path`` in source order; return lengths and #skipped."""
    count = getattr(source, "count", None)
    total = count() if callable(count) else None
    if total is not None and config.max_documents is not None:
        total = min(total, config.max_documents)
    lengths: list[int] = []
    skipped, last = 0, 0.0
    with open(path, "wb") as fh:
        for doc_id, text in source.documents():
            ids = tokenizer.encode(text)
            if ids.size == 0:
                skipped += 1
                continue
            if ids.min() < 0 or ids.max() >= tokenizer.vocab_size:
                raise DataError(f"Tokenizer '{tokenizer.name}' produced ids outside 0..{tokenizer.vocab_size - 1} "
                                f"for document {doc_id!r}.", hint="The tokenizer plugin is broken; report it.")
            fh.write(ids.astype(dtype).tobytes())
            fh.write(eot.tobytes())
            lengths.append(int(ids.size) + 1)
            if progress is not None and time.monotonic() - last >= _PROGRESS_SECONDS:
                progress(len(lengths) + skipped, total)
                last = time.monotonic()
            if config.max_documents is not None and len(lengths) >= config.max_documents:
                break
    if progress is not None:
        progress(len(lengths) + skipped, len(lengths) + skipped)
    return lengths, skipped


def _move_into_place(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``out_dir``; an existing directory is replaced only when ``overwrite``."""
    if out_dir.exists() and overwrite:
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "data")
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.replace(tmp, out_dir)  # succeeds onto a missing or empty directory only
    except OSError as exc:
        raise DataError(f"Data directory {str(out_dir)!r} appeared while preparing (another process?).",
                        hint="Rerun; an existing prepared directory is reused.") from exc


def ensure_prepared(config: DataConfig, progress: Progress | None = None) -> Path:
    """The data directory for ``config``: reused when it matches, prepared when absent.

    A directory prepared for different settings is never overwritten here.
    """
    out_dir = Path(config.dir).expanduser() if config.dir is not None else default_data_dir(config)
    key = config_key(config)
    if out_dir.exists() and not _is_empty_dir(out_dir):
        return _check_existing(out_dir, key)
    try:
        prepare_data(config, out_dir, progress)
    except DataError:
        if out_dir.exists() and not _is_empty_dir(out_dir):  # lost a race with another process
            return _check_existing(out_dir, key)
        raise
    return out_dir


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _check_existing(out_dir: Path, key: str) -> Path:
    if not (out_dir / META_FILE).is_file():
        raise DataError(f"Data directory {str(out_dir)!r} exists but holds no prepared data (no {META_FILE}).",
                        hint="Point data.dir at an empty or new directory.")
    data = PreparedData.open(out_dir)
    if data.meta.get("config_key") != key:
        raise DataError(
            f"Data directory {str(out_dir)!r} was prepared for other data settings "
            f"(key {str(data.meta.get('config_key'))[:12]}, this config {key[:12]}; "
            f"it holds source {data.meta.get('source', {}).get('spec')!r}, "
            f"tokenizer {data.meta.get('tokenizer', {}).get('spec')!r}).",
            hint="Use another data.dir, drop data.dir to use the cache, or rerun "
            "`sublora data prepare --overwrite` to replace it.",
        )
    return out_dir
