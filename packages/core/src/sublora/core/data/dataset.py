"""A prepared data directory, opened read-only: token memmaps, document bounds, batches.

``open`` does only cheap checks (files present, sizes match meta.json) so
training starts fast; ``verify_hashes`` reads every byte when a result must
be tied to exact data (the bound certificate).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sublora.core.data.location import FORMAT_VERSION
from sublora.core.errors import DataError

if TYPE_CHECKING:
    import torch

SPLITS = ("train", "val")
BIN_FILES = {"train": "train.bin", "val": "val.bin"}
EOT_FILES = {"train": "eot_indices.npy", "val": "val_eot_indices.npy"}
DOC_LENGTHS_FILE = "doc_lengths.npy"
META_FILE = "meta.json"
ALL_FILES = (*BIN_FILES.values(), *EOT_FILES.values(), DOC_LENGTHS_FILE, META_FILE)
DTYPES = ("uint16", "uint32")

_RERUN = "Run `sublora data prepare` (with --overwrite to replace this directory)."


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _corrupt(path: Path, what: str) -> DataError:
    return DataError(f"Prepared data in {str(path)!r} is missing or corrupt: {what}.", hint=_RERUN)


class PreparedData:
    """Token ids of the train and val splits; document i = tokens [start_i, end_i), end after its eot."""

    def __init__(self, path: Path, meta: dict[str, Any], eot_indices: dict[str, np.ndarray], doc_lengths: np.ndarray):
        self.path = path
        self.meta = meta
        self.vocab_size = int(meta["vocab_size"])
        self.eot_id = int(meta["eot_id"])
        self.dtype = np.dtype(meta["dtype"])
        self.doc_lengths = doc_lengths
        self._eot = eot_indices
        self.train = np.memmap(path / BIN_FILES["train"], dtype=self.dtype, mode="r")
        self.val = np.memmap(path / BIN_FILES["val"], dtype=self.dtype, mode="r")

    @classmethod
    def open(cls, path: str | Path) -> "PreparedData":
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"Prepared data directory {str(path)!r} does not exist.",
                            hint="Run `sublora data prepare`.")
        missing = [name for name in ALL_FILES if not (path / name).is_file()]
        if missing:
            raise _corrupt(path, f"missing {', '.join(missing)}")
        meta = _read_meta(path)
        dtype = np.dtype(meta["dtype"])
        eots = {}
        for split in SPLITS:
            n_tokens, n_docs = meta["n_tokens"][split], meta["n_documents"][split]
            size = (path / BIN_FILES[split]).stat().st_size
            if size != n_tokens * dtype.itemsize or n_tokens < 2:
                raise _corrupt(path, f"{BIN_FILES[split]} holds {size} bytes, meta.json says {n_tokens} {dtype} tokens")
            eots[split] = _load_array(path, EOT_FILES[split])
            eot = eots[split]
            if len(eot) != n_docs or n_docs < 1 or eot[-1] != n_tokens - 1 or np.any(np.diff(eot) <= 0):
                raise _corrupt(path, f"{EOT_FILES[split]} does not match {n_docs} documents of {n_tokens} tokens")
        lengths = _load_array(path, DOC_LENGTHS_FILE)
        if len(lengths) != meta["n_documents"]["train"] or int(lengths.sum()) != meta["n_tokens"]["train"]:
            raise _corrupt(path, f"{DOC_LENGTHS_FILE} does not match the train documents")
        data = cls(path, meta, eots, lengths)
        for split in SPLITS:
            tokens = data.tokens(split)
            if tokens[-1] != data.eot_id or tokens[eots[split][0]] != data.eot_id:
                raise _corrupt(path, f"{BIN_FILES[split]} does not end its documents with eot id {data.eot_id}")
        return data

    def verify_hashes(self) -> None:
        """Read every token file and compare its sha256 with meta.json."""
        for split in SPLITS:
            name = BIN_FILES[split]
            if file_sha256(self.path / name) != self.meta["sha256"][name]:
                raise _corrupt(self.path, f"the sha256 of {name} differs from meta.json")

    def tokens(self, split: str) -> np.memmap:
        _check_split(split)
        return self.train if split == "train" else self.val

    def eot_indices(self, split: str) -> np.ndarray:
        _check_split(split)
        return self._eot[split]

    def doc_bounds(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of every document of ``split``; ends are exclusive and include the eot."""
        ends = self.eot_indices(split).astype(np.int64) + 1
        starts = np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1]])
        return starts, ends

    def train_doc_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.doc_bounds("train")

    def n_documents(self, split: str) -> int:
        return len(self.eot_indices(split))

    def record(self) -> dict[str, Any]:
        """What a run's manifest records of its data (``data``): where it is and what identifies it."""
        return {"dir": str(self.path), **{k: self.meta.get(k) for k in
                                          ("config_key", "sha256", "vocab_size", "n_tokens", "n_documents")},
                # where the documents came from, kept with the run (an lm coder's independence check reads it
                # even when the prepared data is gone)
                "source": (self.meta.get("source") or {}).get("spec"), "location": self.meta.get("source_location")}

    def n_tokens(self, split: str) -> int:
        return len(self.tokens(split))

    def get_batch(self, split: str, batch_size: int, block_size: int,
                  generator: "torch.Generator | None" = None) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Random windows (x, y) of shape (B, T), y = x shifted by one; same generator state, same batch."""
        import torch

        tokens = self.tokens(split)
        if len(tokens) < block_size + 1:
            raise DataError(
                f"The {split} split has {len(tokens)} tokens, fewer than block_size+1 = {block_size + 1}.",
                hint="Lower model.block_size, or prepare more data (a larger source or val_fraction).",
            )
        offsets = torch.randint(len(tokens) - block_size, (batch_size,), generator=generator).tolist()
        windows = np.stack([tokens[i:i + block_size + 1].astype(np.int64) for i in offsets])  # (B, T+1)
        windows = torch.from_numpy(windows)
        return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"Unknown split {split!r}.", hint="Use 'train' or 'val'.")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _corrupt(path, f"{META_FILE} does not parse ({exc})") from exc
    if not isinstance(meta, dict):
        raise _corrupt(path, f"{META_FILE} is not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"Prepared data in {str(path)!r} has format version {meta.get('format_version')!r}; "
            f"this sublora reads version {FORMAT_VERSION}.", hint=_RERUN)
    try:
        int(meta["vocab_size"]), int(meta["eot_id"]), meta["sha256"]["train.bin"], meta["sha256"]["val.bin"]
        counts = [int(meta[k][s]) for k in ("n_tokens", "n_documents") for s in SPLITS]
    except (KeyError, TypeError, ValueError) as exc:
        raise _corrupt(path, f"{META_FILE} lacks field {exc}") from exc
    if meta.get("dtype") not in DTYPES or min(counts) < 0:
        raise _corrupt(path, f"{META_FILE} has dtype {meta.get('dtype')!r} or negative counts")
    return meta


def _load_array(path: Path, name: str) -> np.ndarray:
    try:
        arr = np.load(path / name, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise _corrupt(path, f"{name} does not load ({exc})") from exc
    if arr.ndim != 1 or arr.dtype != np.int64:
        raise _corrupt(path, f"{name} is not a 1-D int64 array")
    return arr
