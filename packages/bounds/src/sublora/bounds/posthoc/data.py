"""The corpus a post-hoc bound is computed on, and the check that the model reads its tokens as the data's.

``--data`` is a prepared data directory (``sublora data prepare``), a folder of text files (the ``text``
source), or a source spec of the sources registry (``pystdlib``, ``hf:...``); the last two are prepared
(or reused from the cache) with ``--tokenizer``.

A model scored on ids it does not read as the data's tokens gives a number about nothing: the model
directory's own tokenizer must encode a probe (fixed text + the start of the corpus) to the same ids as the
data's tokenizer, and end text with the same id. A directory without a tokenizer is refused unless the
caller vouches for it (``trust_tokenizer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sublora.core.errors import DataError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
PROBE = "def f(x):\n    return x ** 2  # Héllo, wörld! 1234 <b>tags</b>\t\n"


def open_data(data: str | Path, tokenizer: str | None, overrides: dict[str, Any] | None = None,
              progress=None):
    """PreparedData for ``--data``: a prepared directory, a text folder, or a source spec (prepared if needed)."""
    from sublora.core.config import DataConfig
    from sublora.core.data import PreparedData, ensure_prepared
    from sublora.core.data.dataset import META_FILE

    path = Path(str(data)).expanduser()
    if (path / META_FILE).is_file():
        if tokenizer is not None or overrides:
            raise DataError(f"{path} is already prepared (tokenizer {PreparedData.open(path).meta['tokenizer']['spec']}"
                            "): --tokenizer and --data.* options do not apply to it.",
                            hint="Drop them, or pass the source (a text folder or a source spec) to prepare it anew.")
        return PreparedData.open(path)
    fields: dict[str, Any] = dict(overrides or {})
    if path.is_dir():
        fields.setdefault("source", "text")
        fields["source_options"] = {"path": str(path.resolve()), **fields.get("source_options", {})}
    else:
        fields.setdefault("source", str(data))
    fields["tokenizer"] = tokenizer or "bytes"
    try:
        config = DataConfig.model_validate(fields)
    except Exception as exc:
        from sublora.core.component import validation_message
        from sublora.core.errors import ConfigError

        raise ConfigError(f"Invalid data settings: {validation_message(exc)}.") from exc
    return PreparedData.open(ensure_prepared(config, progress=progress))


def _probe_text(data, tokens: int = 512):
    """(text, the data's tokenizer): the fixed probe and the first ``tokens`` tokens of the training stream."""
    from sublora.core.registry import registry

    spec = data.meta["tokenizer"]
    ours = registry("tokenizer").config(spec["spec"], spec.get("options") or {}).build()
    head = np.asarray(data.train[:tokens], dtype=np.int64)
    return PROBE + ours.decode(head[head != data.eot_id]), ours


def check_tokenizer(model_dir: Path, data, trust: bool = False) -> dict[str, Any]:
    """Refuse a model whose tokenizer does not give the data's ids; return what was checked (certificate)."""
    from transformers import AutoTokenizer

    spec = data.meta["tokenizer"]["spec"]
    try:
        if not any((Path(model_dir) / name).is_file() for name in TOKENIZER_FILES):
            raise FileNotFoundError(f"none of {', '.join(TOKENIZER_FILES)}")
        theirs = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - no tokenizer files, or ones transformers cannot read
        if trust:
            return {"checked": False, "data_tokenizer": spec,
                    "note": f"{model_dir} has no loadable tokenizer ({type(exc).__name__}); the caller vouched that "
                            "the model reads the data's ids (--trust-tokenizer)"}
        raise DataError(f"{model_dir} has no tokenizer sublora can load ({type(exc).__name__}: {exc}), so nothing shows the "
                        f"model reads the data's {spec!r} token ids.",
                        hint="Save the model's tokenizer next to it (tokenizer.save_pretrained(DIR)), or pass "
                             "--trust-tokenizer if you know they match.") from exc
    text, ours = _probe_text(data)
    expected = ours.encode(text).tolist()
    try:
        got = list(theirs(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
    except TypeError:
        got = list(theirs(text, add_special_tokens=False)["input_ids"])
    if got != expected:
        at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        raise DataError(
            f"Tokenizer mismatch: {model_dir}'s tokenizer and the data's {spec!r} tokenizer give different ids "
            f"(first difference at token {at}: model {got[at:at + 5]}, data {expected[at:at + 5]}; "
            f"{len(got)} vs {len(expected)} tokens for the same {len(text)} characters).",
            hint="Prepare the data with the model's tokenizer (--tokenizer SPEC, e.g. tiktoken:gpt2 for GPT-2), or "
                 "bound a model trained on this tokenizer.")
    eos = getattr(theirs, "eos_token_id", None)
    if eos is not None and int(eos) != data.eot_id:
        raise DataError(f"Tokenizer mismatch: {model_dir}'s end-of-text id is {eos}, the data's is {data.eot_id} "
                        f"({spec!r}).", hint="Prepare the data with the model's tokenizer, or set the model's "
                                              "eos_token to the data's end-of-text token.")
    return {"checked": True, "data_tokenizer": spec, "model_tokenizer": type(theirs).__name__,
            "probe_tokens": len(expected), "eot_id": data.eot_id}
