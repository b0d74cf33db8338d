"""Data: sources and tokenizers, prepared token directories, training batches.

Names are re-exported lazily, so loading the component configs (what
``sublora plugins`` does) never imports the preparation code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "prepare_data": "sublora.core.data.prepare",
    "ensure_prepared": "sublora.core.data.prepare",
    "prepare_or_reuse": "sublora.core.data.prepare",
    "Preparation": "sublora.core.data.prepare",
    "split_documents": "sublora.core.data.prepare",
    "PreparedData": "sublora.core.data.dataset",
    "config_key": "sublora.core.data.location",
    "identify": "sublora.core.data.location",
    "DataIdentity": "sublora.core.data.location",
    "default_data_dir": "sublora.core.data.location",
    "FORMAT_VERSION": "sublora.core.data.location",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
