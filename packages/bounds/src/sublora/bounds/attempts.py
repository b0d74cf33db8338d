"""The ledger of certification attempts of one run (docs/bounds.md section 8).

Certifying again with other settings (a new subsample seed, alpha grid, estimator list ...) and
keeping the better certificate is a choice made after seeing data. Every certification appends
the sha256 of its result-changing settings to ``RUN/bound_attempts.jsonl`` before it scores the
evaluation sample; with k distinct settings in the ledger every bound is computed at
delta / k (a union bound over the attempts). Repeating identical settings reproduces the
identical certificate, so it is not charged. New settings are refused unless the caller
agrees to pay (``charge``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from sublora.core.config import BoundSettings
from sublora.core.errors import BoundError, VerificationError

LEDGER = "bound_attempts.jsonl"
#: Bound settings that cannot change any certified number (how work is batched, free text).
NO_EFFECT = {"batch_size", "hyper_bits_cover"}


# Settings added after ledgers existed: hashed only away from their default, so identical settings of a run
# certified before them still hash alike.
ADDED_LATER = {"dtype": "float32"}


def settings_sha256(settings: BoundSettings) -> str:
    data = settings.model_dump(mode="json", exclude=NO_EFFECT)
    for name, default in ADDED_LATER.items():
        if data.get(name, default) == default:
            data.pop(name, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def read_ledger(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / LEDGER
    if not path.is_file():
        return []
    entries = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        try:
            entries.append(json.loads(line))
        except ValueError as exc:
            raise VerificationError(f"{path} line {i} is not valid JSON: {exc}.",
                                    hint="The ledger is append-only; restore it from a backup.") from exc
    return entries


def distinct_attempts(entries: list[dict[str, Any]]) -> list[str]:
    """The distinct settings hashes, in the order first tried."""
    return list(dict.fromkeys(e["settings_sha256"] for e in entries))


def planned_attempts(run_dir: Path, settings: BoundSettings, charge: bool) -> int:
    """k for a certification with ``settings``: refused when they are new and ``charge`` is False."""
    seen = distinct_attempts(read_ledger(run_dir))
    digest = settings_sha256(settings)
    if digest in seen:
        return len(seen)
    if seen and not charge:
        raise BoundError(
            f"{run_dir} was certified before with other bound settings ({len(seen)} distinct attempt(s) in {LEDGER}). "
            "Keeping the better of several certificates is a choice after seeing data.",
            hint=f"Pass --charge to pay for it (every bound at delta / {len(seen) + 1}), or certify with the earlier "
                 "settings again (free: identical settings give the identical certificate).",
        )
    return len(seen) + 1


def record_attempt(run_dir: Path, settings: BoundSettings) -> dict[str, Any]:
    """Append this attempt (before the evaluation sample is scored); return the ledger's summary."""
    path = Path(run_dir) / LEDGER
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings_sha256": settings_sha256(settings)}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return summary(run_dir, settings)


def summary(run_dir: Path, settings: BoundSettings) -> dict[str, Any]:
    """What the certificate records: k distinct attempts so far and the delta each bound uses."""
    k = len(distinct_attempts(read_ledger(run_dir)))
    return {"k": k, "ledger": LEDGER, "settings_sha256": settings_sha256(settings), "delta": settings.delta,
            "delta_per_attempt": settings.delta / k}
