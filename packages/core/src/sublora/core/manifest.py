"""Run manifests: the resolved config, versions, seeds and data identity of a run.

Every run directory holds one, so a bound can always be traced back to
exactly the model it certifies. Its ``components`` block names each component
the config selects with the distribution and version that provide it, read
from the registry (as pytest records each plugin's distribution), so a run
that used a third-party plugin says which release of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from sublora.core.config import RunConfig

#: sublora itself and the libraries every run uses; the components' distributions are added per run
PACKAGES = ("sublora-core", "sublora-projectors", "sublora-bounds", "sublora-cli", "torch", "transformers",
            "peft", "numpy", "constriction", "pydantic", "tiktoken")


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in (*PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def components(config: RunConfig) -> dict[str, Any]:
    """Each component ``config`` selects, from its registry entry: ``{kind: {spec, distribution, version,
    entry_point}}`` for the source, tokenizer, projector, coder and quantizer, and ``bound`` a list in the
    order of bound.estimators."""
    from sublora.core.registry import registry
    from sublora.core.spec import parse_spec
    from sublora.core.validate import uses

    out: dict[str, Any] = {}
    for use in uses(config):
        spec = parse_spec(use.spec, use.kind)
        entry = registry(use.kind).entry(spec.family)
        record = {"spec": str(spec), "distribution": entry.distribution, "version": entry.version,
                  "entry_point": entry.value}
        if use.kind == "bound":
            out.setdefault("bound", []).append(record)
        else:
            out.setdefault(use.kind, record)  # the quantizer is used once per levels candidate: one record
    return out


def git_commit() -> str | None:
    """The commit of the sublora checkout, if running from one."""
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def config_hash(config: RunConfig, exclude: dict[str, set[str]] | None = None) -> str:
    """sha256 of the canonical JSON of the config (optionally without some fields)."""
    data = config.model_dump(mode="json", exclude=exclude)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def config_diff(old: RunConfig, new: RunConfig, exclude: dict[str, Any] | None = None) -> list[tuple[str, Any, Any]]:
    """The dotted fields where two configs differ, as (field, old value, new value), minus ``exclude``.

    ``exclude`` has the shape of config_hash's: {section: True} drops a section, {section: {field, ...}} fields.
    """
    a, b = old.model_dump(mode="json", exclude=exclude), new.model_dump(mode="json", exclude=exclude)
    out: list[tuple[str, Any, Any]] = []

    def walk(prefix: str, x: Any, y: Any) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in list(x) + [k for k in y if k not in x]:
                walk(f"{prefix}.{key}" if prefix else str(key), x.get(key), y.get(key))
        elif x != y:
            out.append((prefix, x, y))

    walk("", a, b)
    return out


def describe_diff(diff: list[tuple[str, Any, Any]], limit: int = 6) -> str:
    """'train.lr 0.005 -> 0.001, model.preset tiny -> mini' (at most ``limit``, then 'and N more')."""
    parts = [f"{k} {json.dumps(a)} -> {json.dumps(b)}" for k, a, b in diff[:limit]]
    if len(diff) > limit:
        parts.append(f"and {len(diff) - limit} more")
    return ", ".join(parts)


def write_json(path: Path, data: Any) -> None:
    """Atomic JSON write: a crash never leaves a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def new_manifest(config: RunConfig, **fields: Any) -> dict[str, Any]:
    used = components(config)
    dists = tuple(dict.fromkeys(r["distribution"] for v in used.values() for r in (v if isinstance(v, list) else [v])))
    return {
        "format": "sublora-run/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "config": config.to_dict(),
        "config_sha256": config_hash(config),
        "seeds": {
            "model.init_seed": config.model.init_seed,
            "sublora.seed": config.sublora.seed,
            "train.seed": config.train.seed,
            "bound.seed": config.bound.seed,
            "data.split_seed": config.data.split_seed,
        },
        "components": used,
        "versions": versions(dists),
        "git_commit": git_commit(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        **fields,
    }
