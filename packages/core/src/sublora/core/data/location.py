"""What identifies a prepared dataset, and where it is cached by default.

The key hashes only the fields that change the token files, so two runs
with the same data section share one prepared directory, and a directory
prepared for other settings is recognised instead of silently reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from sublora.core.config import DataConfig
from sublora.core.spec import parse_spec

#: Bumped when the files or meta.json of a prepared directory change meaning.
FORMAT_VERSION = 1

KEY_FIELDS = (
    "source", "source_options", "tokenizer", "tokenizer_options", "val_fraction", "split_seed", "max_documents",
)


def key_payload(config: DataConfig) -> dict:
    """The data-relevant fields, with specs normalised (case, whitespace)."""
    payload = config.model_dump(mode="json", include=set(KEY_FIELDS))
    payload["source"] = str(parse_spec(config.source, "source"))
    payload["tokenizer"] = str(parse_spec(config.tokenizer, "tokenizer"))
    payload["format_version"] = FORMAT_VERSION
    return payload


def config_key(config: DataConfig) -> str:
    """sha256 of the canonical JSON of the data-relevant fields (``dir`` excluded)."""
    text = json.dumps(key_payload(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get("SUBLORA_CACHE") or "~/.cache/sublora").expanduser()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def default_data_dir(config: DataConfig) -> Path:
    """``$SUBLORA_CACHE/data/<source>-<tokenizer>-<key[:12]>``."""
    payload = key_payload(config)
    name = f"{_safe(payload['source'])}-{_safe(payload['tokenizer'])}-{config_key(config)[:12]}"
    return cache_root() / "data" / name
