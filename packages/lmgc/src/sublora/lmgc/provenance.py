"""What data a prior saw, and whether it is independent of a run's training data.

A prior can code a certified model for free only if it was fixed independently of the data the
bound is computed on (docs/lmgc.md, "The LM prior as a coder"). This module reads what a
``sublora train`` prior recorded about its training data and refuses the cases that records can
show to be dependent:

- the prior was trained on the same prepared data (the same train.bin sha256, or the same data key);
- the prior was trained on documents read from the same place, or a folder holding it, whatever the
  source spec (e.g. the embedded corpus with another split or document limit, or its files read by
  the ``text`` source: the documents overlap);
- either side's data cannot be identified (no source and location recorded, and its prepared data is
  gone): no overlap can be ruled out, so the prior is refused until the data is restored;
- the prior was trained on serialized gradients/weights (the ``lmgc`` source) of a run that was
  trained on data matching the run's by either rule above.

Anything the records cannot show (a copy of the data elsewhere, text quoting it, a Hugging Face
prior's undocumented corpus) is not detected: the user must charge such a prior by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def data_identity(record: dict[str, Any] | None) -> dict[str, Any]:
    """The comparable parts of a manifest's ``data`` record (source and location as the run recorded them,
    else from its prepared meta.json if on disk)."""
    record = record or {}
    out = {"config_key": record.get("config_key"), "train_sha256": (record.get("sha256") or {}).get("train.bin"),
           "dir": record.get("dir"), "source": record.get("source"), "location": record.get("location")}
    meta = _read_json(Path(record["dir"]) / "meta.json") if record.get("dir") else None
    if meta is not None:
        source = meta.get("source") or {}
        out.update(source=out["source"] or source.get("spec"), location=out["location"] or meta.get("source_location"),
                   train_sha256=out["train_sha256"] or (meta.get("sha256") or {}).get("train.bin"),
                   config_key=out["config_key"] or meta.get("config_key"))
        out["_describe"] = source.get("describe")
    return out


def _known(identity: dict[str, Any]) -> bool:
    """Whether a data identity says where its documents came from (else no overlap can be ruled out)."""
    return bool(identity.get("source") and identity.get("location") is not None)


def _same_place(a: Any, b: Any) -> bool:
    """Equal locations, or one a folder holding the other (the same documents, whatever the source spec)."""
    if a is None or b is None:
        return False
    a, b = str(a), str(b)
    if a == b:
        return True
    if not (a.startswith("/") and b.startswith("/")):
        return False
    pa, pb = Path(a), Path(b)
    return pa in pb.parents or pb in pa.parents


def prior_saw(run_dir: str | Path) -> dict[str, Any]:
    """{"data": the prior's own data identity, "numbers_of": data identities of the runs whose
    gradients/weights its corpus held (the ``lmgc`` source), "runs": those runs as recorded}."""
    from sublora.lmgc.prior import CHECKPOINTS

    head, sep, tail = str(run_dir).rpartition(":")
    run_dir = Path(head if sep and tail in CHECKPOINTS else str(run_dir)).expanduser()
    manifest = _read_json(run_dir / "manifest.json") or {}
    own = data_identity(manifest.get("data"))
    described = own.pop("_describe", None) or {}
    runs = described.get("runs", []) if described.get("kind") == "lmgc-serialized-numbers" else []
    numbers_of = []
    for run in runs:
        source = run.get("source") or {}
        if source.get("kind") == "sublora train":  # a sublora run's gradients: its data is recorded
            identity = data_identity(source.get("data"))
            identity.pop("_describe", None)
            numbers_of.append({"run": source.get("run"), **identity})
        else:  # `sublora lmgc collect`: a network on the digits; its data set is named
            numbers_of.append({"run": run.get("path"), "dataset": source.get("dataset")})
    return {"data": own, "numbers_of": numbers_of, "runs": runs}


def _matches(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    """Why data identities ``a`` and ``b`` overlap, or None when their records show no overlap."""
    if a.get("train_sha256") and a.get("train_sha256") == b.get("train_sha256"):
        return f"the same prepared training tokens (train.bin sha256 {a['train_sha256'][:12]})"
    if a.get("config_key") and a.get("config_key") == b.get("config_key"):
        return f"the same data key ({a['config_key'][:12]})"
    if a.get("location") and b.get("location") and _same_place(a["location"], b["location"]):
        return (f"documents read from the same place ({a['location']} and {b['location']}; sources "
                f"'{a.get('source')}' and '{b.get('source')}')")
    return None


def independence_problems(saw: dict[str, Any], run_data: dict[str, Any] | None) -> list[str]:
    """Every way the records show the prior to depend on ``run_data`` (a run manifest's ``data`` record)."""
    run = data_identity(run_data)
    run.pop("_describe", None)
    problems = []
    for whose, identity in (("the prior's", saw["data"]), ("this run's", run)):
        if not _known(identity):
            problems.append(f"{whose} training data cannot be identified (no source and location in its record, "
                            f"and no readable meta.json in {identity.get('dir')}): no overlap can be ruled out; "
                            "restore or re-prepare that data directory (`sublora data prepare` gives the same files)")
    why = _matches(saw["data"], run)
    if why:
        problems.append(f"the prior was trained on {why} as the run")
    for other in saw["numbers_of"]:
        if "dataset" not in other and not _known(other):  # a sublora run's numbers: its data must be identifiable
            problems.append(f"the prior was trained on the gradients/weights of {other.get('run')}, whose training "
                            "data cannot be identified: no overlap with this run's can be ruled out")
        why = _matches(other, run)
        if why:
            problems.append(f"the prior was trained on the gradients/weights of {other.get('run')}, which was trained "
                            f"on {why} as the run")
    return problems


def numbers_corpus(manifest: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(what a run trained on the ``lmgc`` source saw, in words; the corpus record) from its prepared meta.json."""
    record = manifest.get("data") or {}
    meta = _read_json(Path(record["dir"]) / "meta.json") if record.get("dir") else None
    described = ((meta or {}).get("source") or {}).get("describe") or {}
    runs = described.get("runs", [])
    names = []
    for run in runs:
        source = run.get("source") or {}
        name = (f"{source.get('network')} seed {source.get('seed')} on {source.get('dataset')}"
                if source.get("kind") == "sublora lmgc collect" else f"sublora run {source.get('run')}")
        names.append(f"{name} ({len(run.get('checkpoints', []))} checkpoints)")
    what = (f"{described.get('serialization')}/{described.get('bytes_per_group')} text of the gradients/weights of "
            f"{len(runs)} run(s): {'; '.join(names)}" if runs else
            "serialized gradients/weights (the lmgc source; its prepared meta.json is not on this machine)")
    return what, {"describe": what, "kind": described.get("kind"), "runs": runs}
