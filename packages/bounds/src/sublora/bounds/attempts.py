"""The ledger of certification attempts of one run (docs/bounds.md section 8).

Certifying again with other settings (a new subsample seed, alpha grid, estimator list ...) and
keeping the better certificate is a choice made after seeing data, and so is stopping: whether to
try again depends on what the first certificate said. Every certification appends the sha256 of its
result-changing settings to ``RUN/bound_attempts.jsonl`` before it scores the evaluation sample. The
j-th distinct settings (in the order first tried) compute every bound at

    delta_j = delta / (j (j + 1)),      sum over j >= 1 of delta_j = delta,

a schedule fixed before any attempt, so all attempts hold together with probability >= 1 - delta
however many are made and whichever is kept. (Splitting delta over the k attempts made so far,
delta / k, is not valid: k is chosen after seeing the earlier certificates.) Repeating identical
settings is the same attempt: the identical certificate. New settings are refused unless the
caller agrees to pay (``charge``).
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
    """The hash of the settings that can change a certified number (a post-hoc bound's settings nest
    sublora's bound settings under ``bound``: their no-effect keys are left out there too)."""
    nested = "bound" in type(settings).model_fields
    data = settings.model_dump(mode="json", exclude={"bound": NO_EFFECT} if nested else NO_EFFECT)
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


def hypothesis_sha256(*parts: Path | bytes) -> str:
    """The identity of a certified hypothesis: its files (model.slc; a post-hoc bound's architecture too)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part if isinstance(part, bytes) else Path(part).read_bytes()).digest())
    return digest.hexdigest()


def _key(entry: dict[str, Any]) -> str:
    hypothesis = entry.get("hypothesis_sha256")
    return entry["settings_sha256"] + (f"/{hypothesis}" if hypothesis else "")


def distinct_attempts(entries: list[dict[str, Any]]) -> list[str]:
    """The distinct attempts in the order first tried: the settings' hash, '/' the hypothesis' when recorded
    (entries written before 2026-11-30 hold the settings only: an attempt of its own)."""
    return list(dict.fromkeys(_key(e) for e in entries))


def attempt_delta(delta: float, attempt: int) -> float:
    """delta_j = delta / (j (j + 1)) of the j-th distinct attempt (j >= 1): the shares sum to delta."""
    if attempt < 1:
        raise BoundError(f"Attempts are numbered from 1; got {attempt}.")
    return delta / (attempt * (attempt + 1))


def _match(seen: list[str], digest: str, hypothesis: str | None) -> int | None:
    """Index of the attempt these settings (and hypothesis) are, or None. Without a hypothesis (the check
    made before one exists) any attempt with these settings matches. A line written before hypotheses were
    recorded matches no hypothesis: it may have been another model's."""
    for i, key in enumerate(seen):
        settings, _, held = key.partition("/")
        if settings == digest and (hypothesis is None or held == hypothesis):
            return i
    return None


def attempt_number(seen: list[str], digest: str, hypothesis: str | None = None) -> int:
    """j of the settings ``digest`` (and ``hypothesis``): its place among the attempts tried (the next if new)."""
    i = _match(seen, digest, hypothesis)
    return len(seen) + 1 if i is None else i + 1


def planned_attempts(run_dir: Path, settings: BoundSettings, charge: bool, hypothesis: str | None = None) -> int:
    """j for a certification with ``settings`` (of ``hypothesis``, once it exists): refused when the attempt is
    new and ``charge`` is False. Called before any work with the settings alone, then with the hypothesis."""
    seen = distinct_attempts(read_ledger(run_dir))
    digest = settings_sha256(settings)
    j = attempt_number(seen, digest, hypothesis)
    if j > len(seen) and seen and not charge:
        new_settings = _match(seen, digest, None) is None
        what = "other bound settings" if new_settings else "these bound settings but another model (its file differs)"
        raise BoundError(
            f"{run_dir} was certified before with {what} ({len(seen)} distinct attempt(s) in {LEDGER}). "
            "Keeping the better of several certificates is a choice after seeing data.",
            hint=f"Pass --charge to pay for it (attempt {j}: every bound at delta / {j * (j + 1)})"
                 + (", or certify with the earlier settings again (free: identical settings give the identical "
                    "certificate)." if new_settings else "."),
        )
    return j


def record_attempt(run_dir: Path, settings: BoundSettings, hypothesis: str | None = None) -> dict[str, Any]:
    """Append this attempt (before the evaluation sample is scored); return the ledger's summary."""
    path = Path(run_dir) / LEDGER
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings_sha256": settings_sha256(settings)}
    if hypothesis is not None:
        entry["hypothesis_sha256"] = hypothesis
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return summary(run_dir, settings, hypothesis)


def summary(run_dir: Path, settings: BoundSettings, hypothesis: str | None = None) -> dict[str, Any]:
    """What the certificate records: which attempt these settings (and hypothesis) are (j, fixed once they are
    in the ledger) and the delta each bound uses, delta / (j (j + 1))."""
    digest = settings_sha256(settings)
    j = attempt_number(distinct_attempts(read_ledger(run_dir)), digest, hypothesis)
    return {"attempt": j, "rule": "delta / (j (j + 1))", "ledger": LEDGER, "settings_sha256": digest,
            "hypothesis_sha256": hypothesis, "delta": settings.delta, "delta_per_attempt": attempt_delta(settings.delta, j)}
