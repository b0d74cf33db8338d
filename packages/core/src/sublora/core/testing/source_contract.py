"""The data-source contract: checks any ``sublora.sources`` plugin can run on itself (no torch).

Prepared data is cached by the source's options, location and fingerprint and split by
document, so a source must give the same documents in the same order every time. Each check
takes a registered spec with its options (``"text", {"path": "corpus/"}``), a config instance
or a built source, reads at most ``limit`` documents, raises ``AssertionError`` naming the
source and what is wrong, and needs no pytest. ``check_source_contract`` runs them all.

- ``check_source_documents``: ``documents()`` yields ``(id, text)`` pairs of strings, ids
  distinct, at least one non-empty text; a second pass and a second instance yield exactly the
  same pairs in the same order; ``count()``, when the source has one, is None (unknown) or the
  number of documents ``documents()`` yields (checked when that is at most ``limit``).
- ``check_source_metadata``: ``describe()`` is a JSON-serialisable dict, ``location()`` None or
  a string, ``fingerprint()`` None or a JSON-serialisable dict, each the same on a second call;
  the options serialise (``model_dump(mode="json")``, written to meta.json); ``skipped_files``
  is a list (call ``super().__init__(config)``).
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from sublora.core.source import Source, SourceConfig
from sublora.core.testing._resolve import label, resolve

Spec = str | SourceConfig | Source


def _resolve(spec: Spec, options: dict | None) -> tuple[Source, Source, str]:
    """(source, a second instance from the same config, name)."""
    config, source = resolve("source", spec, options, SourceConfig, Source)
    other = config.build() if not isinstance(spec, Source) else source
    return source, other, label("source", config, source)


def read(source: Source, limit: int) -> list[tuple[Any, Any]]:
    """The first ``limit`` documents of one pass."""
    return list(islice(source.documents(), limit))


def check_source_documents(spec: Spec, options: dict | None = None, limit: int = 200) -> list[tuple[str, str]]:
    """Pairs of strings, distinct ids, a non-empty text, the same order every pass (module docstring)."""
    source, other, name = _resolve(spec, options)
    first = read(source, limit)
    assert first, f"{name}: documents() yielded nothing"
    for i, item in enumerate(first):
        assert isinstance(item, tuple) and len(item) == 2, (
            f"{name}: document {i} is {type(item).__name__} {item!r:.80}, not a (id, text) tuple")
        doc_id, text = item
        assert isinstance(doc_id, str) and isinstance(text, str), (
            f"{name}: document {i} is ({type(doc_id).__name__}, {type(text).__name__}); both must be str")
    ids = [doc_id for doc_id, _ in first]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"{name}: document ids repeat, e.g. {repeated[:3]}"
    assert any(text for _, text in first), f"{name}: every document is empty"
    assert read(source, limit) == first, f"{name}: a second pass over documents() gives other documents or order"
    assert read(other, limit) == first, f"{name}: a second instance with the same options gives other documents or order"
    count = getattr(source, "count", None)
    if callable(count):
        n = count()
        assert n is None or (isinstance(n, int) and n >= 0), (
            f"{name}: count() returned {n!r}, not a non-negative int or None (unknown)")
        if n is not None and n <= limit:
            assert n == len(first), f"{name}: count() says {n} documents, documents() yields {len(first)}"
    return first


def _json(value: Any, what: str, name: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{name}: {what} is not JSON-serialisable ({exc}); meta.json records it") from exc


def check_source_metadata(spec: Spec, options: dict | None = None) -> None:
    """describe / location / fingerprint well-typed, serialisable and stable; options serialisable."""
    source, _, name = _resolve(spec, options)
    described = source.describe()
    assert isinstance(described, dict), f"{name}: describe() returned {type(described).__name__}, not a dict"
    assert _json(described, "describe()", name) == _json(source.describe(), "describe()", name), (
        f"{name}: describe() changes between calls")
    location = source.location()
    assert location is None or isinstance(location, str), f"{name}: location() returned {location!r}, not str or None"
    assert source.location() == location, f"{name}: location() changes between calls"
    fingerprint = source.fingerprint()
    assert fingerprint is None or isinstance(fingerprint, dict), (
        f"{name}: fingerprint() returned {type(fingerprint).__name__}, not a dict or None")
    assert _json(source.fingerprint(), "fingerprint()", name) == _json(fingerprint, "fingerprint()", name), (
        f"{name}: fingerprint() changes between calls while the data does not: every run would prepare it again")
    try:
        source.config.model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001 - any serialisation failure breaks meta.json
        raise AssertionError(f"{name}: its options do not serialise to JSON ({exc})") from exc
    assert isinstance(getattr(source, "skipped_files", None), list), (
        f"{name}: no skipped_files list; call super().__init__(config) in __init__")


def check_source_contract(spec: Spec, options: dict | None = None, limit: int = 200) -> None:
    """The whole contract: documents, then metadata."""
    check_source_documents(spec, options, limit)
    check_source_metadata(spec, options)


__all__ = ["check_source_contract", "check_source_documents", "check_source_metadata", "read"]
