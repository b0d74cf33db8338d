"""The built-in data sources: Python's standard library, local text files, HF datasets.

Every source yields ``(document id, text)`` in an order that depends only on
the data, never on the file system's listing order, so a prepared dataset
(and the bound computed on it) can be reproduced.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sublora.core.data.configs import HFSourceConfig, PyStdlibSourceConfig, TextSourceConfig
from sublora.core.data.files import file_undecodable_reason, listing_fingerprint, read_document, refuse
from sublora.core.errors import DataError
from sublora.core.source import Source

#: Directory names never read from the standard library: tests and installed packages.
STDLIB_EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})


class PyStdlibSource(Source):
    """The default corpus: it ships with every Python, so it needs no download."""

    def __init__(self, config: PyStdlibSourceConfig):
        super().__init__(config)
        self.root = Path(config.root).expanduser() if config.root else Path(sysconfig.get_paths()["stdlib"])

    def files(self) -> list[str]:
        """Relative posix paths of the files read, sorted."""
        if not self.root.is_dir():
            raise DataError(
                f"Standard library directory {str(self.root)!r} does not exist.",
                hint="Set data.source_options.root to a folder of .py files, or use another source.",
            )
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in STDLIB_EXCLUDED_DIRS]
            rel_dir = Path(dirpath).relative_to(self.root)
            found.extend((rel_dir / f).as_posix() for f in filenames if f.endswith(".py"))
        return sorted(found)

    def count(self) -> int:
        return len(self.files())

    def documents(self) -> Iterator[tuple[str, str]]:
        for rel in self.files():
            text = read_document(self.root / rel, rel, self.config.undecodable, self.skipped_files)
            if text is not None:
                yield rel, text

    def location(self) -> str:
        return str(self.root.resolve())

    def fingerprint(self) -> dict[str, Any]:
        return listing_fingerprint((rel, self.root / rel) for rel in self.files())

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "root": str(self.root),
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
        }


class TextSource(Source):
    """Local files; folders and globs are read in sorted path order."""

    def __init__(self, config: TextSourceConfig):
        super().__init__(config)
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in config.extensions)
        self._files: list[tuple[Path, str]] | None = None

    def _wanted(self, path: Path) -> bool:
        return path.suffix.lower() in self.extensions

    def files(self) -> list[tuple[Path, str]]:
        """``(path, document id prefix)`` of every file read, sorted by id.

        Listed once per instance (resolving 60,000 paths takes seconds), so the files read are
        the files fingerprinted.
        """
        if self._files is None:
            self._files = self._list_files()
        return list(self._files)

    def _list_files(self) -> list[tuple[Path, str]]:
        path = Path(self.config.path).expanduser()
        if path.is_file():
            return [(path, path.name)]
        if path.is_dir():
            found = self._walk(path)
        else:
            found = []
            for match in sorted(glob.glob(str(path), recursive=True)):
                p = Path(match)
                if p.is_dir():
                    found.extend(self._walk(p))
                elif p.is_file() and self._wanted(p):
                    found.append((p, p.as_posix()))
        if not found:
            missing = not any(True for _ in glob.iglob(str(path), recursive=True))
            what = "does not exist" if missing else f"matches no file with suffix {', '.join(self.extensions)}"
            raise DataError(
                f"Text source path {self.config.path!r} {what}.",
                hint="Check data.source_options.path (a file, a folder or a glob) and data.source_options.extensions.",
            )
        unique = {p.resolve(): (p, doc_id) for p, doc_id in found}
        return sorted(unique.values(), key=lambda item: item[1])

    def _walk(self, folder: Path) -> list[tuple[Path, str]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                p = Path(dirpath) / name
                if not name.startswith(".") and self._wanted(p):
                    out.append((p, p.relative_to(folder).as_posix()))
        return out

    def count(self) -> int | None:
        files = self.files()
        return None if any(p.suffix.lower() == ".jsonl" for p, _ in files) else len(files)

    def documents(self) -> Iterator[tuple[str, str]]:
        for path, doc_id in self.files():
            if path.suffix.lower() == ".jsonl":
                yield from self._jsonl(path, doc_id)
            else:
                text = read_document(path, doc_id, self.config.undecodable, self.skipped_files)
                if text is not None:
                    yield doc_id, text

    def location(self) -> str:
        """The resolved file or folder; a glob pattern made absolute (against the working directory)."""
        path = Path(self.config.path).expanduser()
        return str(path.resolve()) if path.exists() else os.path.abspath(path)

    def fingerprint(self) -> dict[str, Any]:
        return listing_fingerprint((doc_id, path) for path, doc_id in self.files())

    def _jsonl(self, path: Path, doc_id: str) -> Iterator[tuple[str, str]]:
        field = self.config.text_field
        reason = file_undecodable_reason(path)  # checked whole first: a file is skipped entirely or read entirely
        if reason is not None:
            if self.config.undecodable == "refuse":
                raise refuse(path, reason)
            self.skipped_files.append(doc_id)
            return
        for lineno, record in jsonl_records(path):
            if not isinstance(record.get(field), str):
                raise DataError(f"{path}:{lineno} has no string field {field!r} (found: {', '.join(record)}).",
                                hint="Set data.source_options.text_field to the field holding the text.")
            yield f"{doc_id}:{lineno}", record[field]


def jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a .jsonl file; DataError naming the line otherwise."""
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno} is not valid JSON ({exc.msg}).",
                                hint="Each line of a .jsonl file must be one JSON object.") from exc
            if not isinstance(record, dict):
                raise DataError(f"{path}:{lineno} is not a JSON object (it is a {type(record).__name__}).",
                                hint="Each line of a .jsonl file must be one JSON object.")
            yield lineno, record


class HFSource(Source):
    """A Hugging Face dataset, streamed in its stored row order; `datasets` is imported only here.

    Streaming (the default) reads rows as they come, so a corpus the size of OpenWebText is
    never downloaded whole into the `datasets` cache nor held in memory.
    """

    def __init__(self, config: HFSourceConfig):
        super().__init__(config)

    def _load(self):
        try:
            import datasets
        except ImportError as exc:
            raise DataError(
                "The 'hf' source needs the Hugging Face `datasets` package.",
                hint="Run `pip install sublora-core[hf]`, or use the 'pystdlib' or 'text' source.",
            ) from exc
        cfg = self.config
        try:
            ds = datasets.load_dataset(cfg.name, cfg.config_name, split=cfg.split, data_files=cfg.data_files,
                                       cache_dir=cfg.cache_dir, streaming=cfg.streaming)
        except Exception as exc:  # noqa: BLE001 - datasets raises many unrelated types
            raise self._unreadable(exc) from exc
        columns = ds.column_names  # None for a stream whose features are unknown: checked on the first rows
        if columns is not None:
            self._check_columns(columns)
        if cfg.max_documents is not None:
            ds = ds.take(cfg.max_documents) if cfg.streaming else ds.select(range(min(cfg.max_documents, len(ds))))
        return ds.select_columns([cfg.text_field]) if columns is not None else ds

    def _unreadable(self, exc: Exception) -> DataError:
        cfg = self.config
        return DataError(
            f"Could not load dataset {cfg.name!r} (split {cfg.split!r}): {type(exc).__name__}: {exc}",
            hint="Check the name, split and data_files; offline, load local files with name='json' and "
            "data_files=..., or use the 'text' source.",
        )

    def _check_columns(self, columns) -> None:
        cfg = self.config
        if cfg.text_field not in columns:
            raise DataError(f"Dataset {cfg.name!r} has no column {cfg.text_field!r} "
                            f"(columns: {', '.join(columns)}).",
                            hint="Set data.source_options.text_field to the column holding the text.")

    def documents(self) -> Iterator[tuple[str, str]]:
        ds = self._load()
        field, index = self.config.text_field, 0
        batches = iter(ds.iter(batch_size=1000))
        while True:
            try:
                batch = next(batches, None)
            except Exception as exc:  # noqa: BLE001 - a stream fails while read (missing file, network)
                raise self._unreadable(exc) from exc
            if batch is None:
                return
            if index == 0:
                self._check_columns(list(batch))
            for text in batch[field]:
                if text is not None and not isinstance(text, str):
                    raise DataError(f"Column {field!r} of dataset {self.config.name!r} holds "
                                    f"{type(text).__name__} values, not text (row {index}).",
                                    hint="Set data.source_options.text_field to the column holding the text.")
                yield f"{self.config.name}/{self.config.split}:{index}", text or ""
                index += 1

    def _local_files(self) -> list[str]:
        """The data_files entries that are local paths (not URLs), in order."""
        files = self.config.data_files
        if files is None:
            return []
        groups = files.values() if isinstance(files, dict) else [files]
        flat = [f for g in groups for f in ([g] if isinstance(g, str) else g)]
        return [f for f in flat if "://" not in f]

    def location(self) -> str | None:
        """Local data_files made absolute; None for a named dataset (its options identify it)."""
        local = self._local_files()
        return json.dumps([os.path.abspath(os.path.expanduser(f)) for f in local]) if local else None

    def fingerprint(self) -> dict[str, Any] | None:
        local = self._local_files()
        if not local:
            return None
        matched = [m for f in local for m in sorted(glob.glob(os.path.expanduser(f), recursive=True))]
        return listing_fingerprint((m, Path(m)) for m in matched if os.path.isfile(m))

    def describe(self) -> dict[str, Any]:
        try:
            from importlib.metadata import version
            datasets_version = version("datasets")
        except Exception:  # noqa: BLE001 - metadata is informative only
            datasets_version = None
        return {**super().describe(), "datasets_version": datasets_version}
