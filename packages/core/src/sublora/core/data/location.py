"""What identifies a prepared dataset, and where it is cached by default.

The key (``config_key``, recorded in meta.json and in the cache directory's
name) hashes everything that changes the token files:

- the data fields of the config, specs normalised (``dir`` excluded);
- the source's resolved location (``Source.location``): ``path: ./c`` read from
  two working directories is two data sets;
- the source's content fingerprint (``Source.fingerprint``): for local files,
  sha256 over one ``name<TAB>size<TAB>mtime_ns`` line per file read, in read
  order. An edited corpus gets a new key and is prepared again, never served
  from a stale cache; an unchanged one (the standard library) keeps its key.

``settings_key`` is the same hash without the fingerprint: two preparations
with equal settings keys and different keys are the same source whose files
changed in between, which is how a re-preparation is explained to the user.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sublora.core.config import DataConfig
from sublora.core.spec import parse_spec

if TYPE_CHECKING:
    from sublora.core.source import Source

#: Bumped when the files or meta.json of a prepared directory change meaning.
FORMAT_VERSION = 1

KEY_FIELDS = (
    "source", "source_options", "tokenizer", "tokenizer_options", "val_fraction", "split_seed", "max_documents",
)


@dataclass(frozen=True)
class DataIdentity:
    """The cache identity of a data section, as of now (the fingerprint reads the file system)."""

    key: str
    settings_key: str
    location: str | None
    fingerprint: dict[str, Any] | None

    def to_meta(self) -> dict[str, Any]:
        return {"config_key": self.key, "settings_key": self.settings_key,
                "source_location": self.location, "source_fingerprint": self.fingerprint}


def key_payload(config: DataConfig) -> dict:
    """The data-relevant fields, with specs normalised (case, whitespace)."""
    payload = config.model_dump(mode="json", include=set(KEY_FIELDS))
    payload["source"] = str(parse_spec(config.source, "source"))
    payload["tokenizer"] = str(parse_spec(config.tokenizer, "tokenizer"))
    payload["format_version"] = FORMAT_VERSION
    return payload


def _hash(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def build_source(config: DataConfig) -> "Source":
    from sublora.core.registry import registry

    return registry("source").config(config.source, config.source_options).build()


def identify(config: DataConfig, source: "Source | None" = None) -> DataIdentity:
    """Hash the settings, the source's location and its content fingerprint (None parts are left out,
    so a source without them keeps the key of the settings alone)."""
    source = source if source is not None else build_source(config)
    location, fingerprint = source.location(), source.fingerprint()
    settings = key_payload(config)
    if location is not None:
        settings["location"] = location
    full = settings if fingerprint is None else {**settings, "fingerprint": fingerprint}
    return DataIdentity(_hash(full), _hash(settings), location, fingerprint)


def config_key(config: DataConfig) -> str:
    """sha256 of the canonical JSON of the data fields, the source's location and content fingerprint."""
    return identify(config).key


def cache_root() -> Path:
    return Path(os.environ.get("SUBLORA_CACHE") or "~/.cache/sublora").expanduser()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def cache_prefix(config: DataConfig) -> str:
    """``<source>-<tokenizer>-``: the start of every cache directory name of this source and tokenizer."""
    payload = key_payload(config)
    return f"{_safe(payload['source'])}-{_safe(payload['tokenizer'])}-"


def default_data_dir(config: DataConfig, identity: DataIdentity | None = None) -> Path:
    """``$SUBLORA_CACHE/data/<source>-<tokenizer>-<key[:12]>``."""
    key = (identity or identify(config)).key
    return cache_root() / "data" / f"{cache_prefix(config)}{key[:12]}"
