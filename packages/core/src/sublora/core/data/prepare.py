"""Turn a source + tokenizer into a prepared data directory, atomically.

Documents are split into train/val by document (not by token), so the
document-level bound samples whole held-in documents. Everything is written
into a temporary sibling directory and renamed into place at the end: a
crash never leaves a half-written directory that looks valid.

Memory stays bounded whatever the corpus size: documents are tokenized in
batches (streaming.py) into one token file, then split into train.bin and
val.bin in one sequential pass; only the per-document lengths are held.

``ensure_prepared`` reuses a directory only when its key (settings, the
source's resolved location and content fingerprint: see location.py) is this
config's key as of now, so an edited corpus is prepared again, and says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sublora.core.config import DataConfig
from sublora.core.data.dataset import BIN_FILES, DOC_LENGTHS_FILE, EOT_FILES, META_FILE, PreparedData, token_dtype
from sublora.core.data.location import (FORMAT_VERSION, DataIdentity, build_source, cache_prefix, cache_root,
                                        default_data_dir, identify)
from sublora.core.data.streaming import check_workers, copy_runs, tokenize_to_file
from sublora.core.errors import DataError
from sublora.core.registry import registry

Progress = Callable[[int, "int | None"], None]
Notify = Callable[[str], None]

#: How many skipped file names meta.json lists (the count is always complete).
SKIPPED_EXAMPLES = 20


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
                 overwrite: bool = False, workers: int = 1) -> dict[str, Any]:
    """Tokenize, split and write ``out_dir``; return its meta.json contents.

    ``progress(done, total)`` is called while documents are tokenized; ``total`` is
    None when the source cannot count its documents up front. ``workers`` tokenizer
    processes (1: this process) give the same files for any count.
    """
    check_workers(workers)
    source = build_source(config)
    return _prepare(config, Path(out_dir).expanduser(), source, identify(config, source), progress, overwrite,
                    workers)


def _prepare(config: DataConfig, out_dir: Path, source, identity: DataIdentity, progress: Progress | None,
             overwrite: bool, workers: int = 1) -> dict[str, Any]:
    """prepare_data with the source already built and identified (its fingerprint taken before reading it)."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise DataError(f"Data directory {str(out_dir)!r} already exists and is not empty.",
                        hint="Pass overwrite (`sublora data prepare --overwrite`) or choose another data.dir.")
    source_config = source.config
    tokenizer_config = registry("tokenizer").config(config.tokenizer, config.tokenizer_options)
    tokenizer = tokenizer_config.build()

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        meta = _write(config, source, tokenizer, tokenizer_config, tmp, progress, workers)
        meta.update(identity.to_meta())
        skipped = list(getattr(source, "skipped_files", []))
        meta["skipped_undecodable_files"] = len(skipped)
        meta["skipped_undecodable_examples"] = skipped[:SKIPPED_EXAMPLES]
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


def _write(config: DataConfig, source, tokenizer, tokenizer_config, tmp: Path, progress: Progress | None,
           workers: int) -> dict[str, Any]:
    dtype = token_dtype(tokenizer.vocab_size)
    lengths, skipped = _tokenize_all(config, source, tokenizer, tokenizer_config, tmp / "all.bin", dtype,
                                     progress, workers)
    if not len(lengths):
        raise DataError(f"The source '{config.source}' yielded no non-empty documents.",
                        hint="Check data.source and data.source_options (e.g. the path holds text files).")
    is_val = split_documents(len(lengths), config.val_fraction, config.split_seed)
    hashes = _split_files(tmp, lengths, is_val, dtype)
    (tmp / "all.bin").unlink()
    counts: dict[str, dict[str, int]] = {"n_documents": {}, "n_tokens": {}}
    for split, mask in (("train", ~is_val), ("val", is_val)):
        split_lengths = lengths[mask]
        np.save(tmp / EOT_FILES[split], np.cumsum(split_lengths) - 1)
        if split == "train":
            np.save(tmp / DOC_LENGTHS_FILE, split_lengths)
        counts["n_documents"][split] = int(mask.sum())
        counts["n_tokens"][split] = int(split_lengths.sum())
    return {
        "format_version": FORMAT_VERSION,
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


def _split_files(tmp: Path, lengths: np.ndarray, is_val: np.ndarray, dtype: np.dtype) -> dict[str, str]:
    """Copy each document of all.bin to train.bin or val.bin, in order; return the files' sha256.

    Consecutive documents of one split are one byte range, so this is a single sequential pass.
    """
    ends = np.cumsum(lengths) * dtype.itemsize
    starts = ends - lengths * dtype.itemsize
    change = np.flatnonzero(is_val[1:] != is_val[:-1]) + 1
    first = np.concatenate([[0], change]).tolist()
    last = np.concatenate([change, [len(lengths)]]).tolist()
    runs = [(int(starts[a]), int(ends[b - 1]), bool(is_val[a])) for a, b in zip(first, last)]
    names = {False: BIN_FILES["train"], True: BIN_FILES["val"]}
    digests = {key: hashlib.sha256() for key in names}
    with open(tmp / names[False], "wb") as train, open(tmp / names[True], "wb") as val:
        copy_runs(tmp / "all.bin", runs, {False: train, True: val}, digests)
    return {names[key]: digests[key].hexdigest() for key in names}


def _tokenize_all(config, source, tokenizer, tokenizer_config, path: Path, dtype, progress,
                  workers: int) -> tuple[np.ndarray, int]:
    """Write every non-empty document + eot to ``path`` in source order; return lengths and #skipped."""
    count = getattr(source, "count", None)
    total = count() if callable(count) else None
    if total is not None and config.max_documents is not None:
        total = min(total, config.max_documents)

    def seen(documents: int) -> int:
        return documents + len(getattr(source, "skipped_files", ()))

    report = None if progress is None else (lambda documents: progress(seen(documents), total))
    with open(path, "wb") as fh:
        tally = tokenize_to_file(source.documents(), tokenizer, tokenizer_config, dtype, fh, workers=workers,
                                 max_documents=config.max_documents, progress=report)
    if progress is not None:
        done = seen(tally.kept + tally.empty)
        progress(done, done)
    return tally.doc_lengths(), tally.empty


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


@dataclass(frozen=True)
class Preparation:
    """What ``prepare_or_reuse`` did: the directory and its meta.json, whether it was reused, and the
    cached preparations of the same source whose files have changed since (why it was prepared again)."""

    path: Path
    reused: bool
    meta: dict[str, Any]
    changed_since: tuple[Path, ...] = ()

    def changed_note(self) -> str:
        if not self.changed_since:
            return ""
        old = ", ".join(str(p) for p in self.changed_since)
        return (f"The files of source '{self.meta['source']['spec']}' ({self.meta.get('source_location')}) changed "
                f"since {old} was prepared, so they were prepared again into {self.path}.")

    def notes(self) -> list[str]:
        """What the user should hear about a fresh preparation: changed files, skipped files."""
        if self.reused:
            return []
        return [note for note in (self.changed_note(), skipped_note(self.meta)) if note]


def ensure_prepared(config: DataConfig, progress: Progress | None = None, notify: Notify | None = None,
                    workers: int = 1) -> Path:
    """The data directory for ``config``: reused when it matches, prepared when absent.

    ``notify`` receives the notes of a preparation (files changed since an earlier one, files skipped).
    A directory prepared for different settings or files is never overwritten here.
    """
    done = prepare_or_reuse(config, progress, workers)
    for note in done.notes() if notify is not None else ():
        notify(note)
    return done.path


def prepare_or_reuse(config: DataConfig, progress: Progress | None = None, workers: int = 1) -> Preparation:
    """``ensure_prepared``, saying whether the directory was reused and why it was prepared again."""
    check_workers(workers)
    source = build_source(config)
    identity = identify(config, source)
    out_dir = Path(config.dir).expanduser() if config.dir is not None else default_data_dir(config, identity)
    if out_dir.exists() and not _is_empty_dir(out_dir):
        return _reuse(out_dir, identity)
    try:
        meta = _prepare(config, out_dir, source, identity, progress, overwrite=False, workers=workers)
    except DataError:
        if out_dir.exists() and not _is_empty_dir(out_dir):  # lost a race with another process
            return _reuse(out_dir, identity)
        raise
    return Preparation(out_dir, False, meta, tuple(_changed_since(config, identity)))


def _reuse(out_dir: Path, identity: DataIdentity) -> Preparation:
    return Preparation(out_dir, True, PreparedData.open(_check_existing(out_dir, identity)).meta)


def skipped_note(meta: dict[str, Any]) -> str:
    """One line on the files a preparation left out as binary or not UTF-8 ('' when none)."""
    n = int(meta.get("skipped_undecodable_files") or 0)
    if not n:
        return ""
    first = (meta.get("skipped_undecodable_examples") or ["?"])[0]
    return (f"Skipped {n} file{'s' if n > 1 else ''} that {'are' if n > 1 else 'is'} binary or not UTF-8 text "
            f"(first: {first}; all counted in meta.json); set data.source_options.undecodable=refuse to stop "
            "on them instead.")


def _changed_since(config: DataConfig, identity: DataIdentity) -> list[Path]:
    """Cached preparations of the same settings and location whose files have changed since."""
    if config.dir is not None or identity.fingerprint is None:
        return []
    out = []
    for path in sorted((cache_root() / "data").glob(f"{cache_prefix(config)}*")):
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(meta, dict) and meta.get("settings_key") == identity.settings_key
                and meta.get("config_key") != identity.key):
            out.append(path)
    return out


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _check_existing(out_dir: Path, identity: DataIdentity) -> Path:
    if not (out_dir / META_FILE).is_file():
        raise DataError(f"Data directory {str(out_dir)!r} exists but holds no prepared data (no {META_FILE}).",
                        hint="Point data.dir at an empty or new directory.")
    data = PreparedData.open(out_dir)
    key = data.meta.get("config_key")
    if key == identity.key:
        return out_dir
    hint = ("Use another data.dir, drop data.dir to use the cache, or rerun "
            "`sublora data prepare --overwrite` to replace it.")
    if data.meta.get("settings_key") == identity.settings_key:
        then, now = data.meta.get("source_fingerprint") or {}, identity.fingerprint or {}
        sizes = [(fp.get("files"), fp.get("bytes")) for fp in (then, now)]
        what = ("the same number and total size of files, other modification times" if sizes[0] == sizes[1] else
                f"{sizes[0][0]} files of {sizes[0][1]} bytes then, {sizes[1][0]} files of {sizes[1][1]} bytes now")
        raise DataError(f"Data directory {str(out_dir)!r} was prepared from the same source, but its files have "
                        f"changed since ({what}).", hint=hint)
    raise DataError(
        f"Data directory {str(out_dir)!r} was prepared for other data settings or files "
        f"(key {str(key)[:12]}, this config {identity.key[:12]}; "
        f"it holds source {data.meta.get('source', {}).get('spec')!r} "
        f"at {data.meta.get('source_location') or 'an unrecorded location'}, "
        f"tokenizer {data.meta.get('tokenizer', {}).get('spec')!r}).",
        hint=hint,
    )
