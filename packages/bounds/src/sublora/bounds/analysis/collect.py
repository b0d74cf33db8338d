"""One flat record per finished run, read from its manifest and certificate."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sublora.core.errors import RunDirError
from sublora.core.manifest import read_json

_LAYER = re.compile(r"(\d+)$")


@dataclass
class RunRecord:
    """What the analysis needs of one run. Bits are those charged by the bound (file + prefix + extra)."""

    name: str
    path: Path
    budget: int  # d, the intrinsic dimension
    method: str  # the condition's label, without the budget
    replicate: str  # e.g. the seed label
    projector: str
    code_bits: int
    total_bits: float
    empirical: float  # the chosen bound's empirical term (bits/token)
    bound: float  # the chosen bound's value
    bound_name: str
    complexity_term: float
    confidence_term: float
    random_guess: float
    train_bpt: float  # quantized model, bits/token, unsmoothed
    val_bpt: float
    gammas: dict[str, float] = field(default_factory=dict)  # learned/fixed allocation: layer -> gamma
    mode: str | None = None
    bounds: dict[str, float] = field(default_factory=dict)  # every bound by name

    @property
    def size_kb(self) -> float:
        return self.code_bits / 8 / 1000

    @property
    def kl_nats(self) -> float:
        return self.total_bits * math.log(2)


def layer_index(key: str) -> float:
    """Sort key of a layer label ('h.3' -> 3; anything without a number, e.g. the head, last)."""
    m = _LAYER.search(key)
    return float(m.group(1)) if m else math.inf


def _labels(results: Path) -> tuple[dict[str, dict[str, str]], list[str], list[str], str | None]:
    """Point labels, condition axes, replicate axes and the budget axis, from sweep.json when present."""
    sweep = results / "sweep.json"
    if not sweep.is_file():
        return {}, [], [], None
    data = read_json(sweep)
    budget_axis = None
    for axis in data.get("grid", {}).get("axes", []):
        targets = [axis.get("field")] + list(axis.get("fields") or [])
        if "sublora.intrinsic_dim" in targets:
            budget_axis = axis["name"]
    labels = {name: p.get("labels", {}) for name, p in data.get("points", {}).items()}
    return labels, data.get("conditions", []), data.get("replicates", []), budget_axis


def _method_from_config(config: dict[str, Any]) -> str:
    spec = config["sublora"]["projector"]
    options = config["sublora"].get("projector_options") or {}
    shown = {k: v for k, v in options.items() if k in ("allocation_ratio", "steepness", "matrix", "density", "base")}
    return spec + "".join(f" {k}={v}" for k, v in sorted(shown.items()))


def headline_or_fixed(cert: dict) -> str:
    """The headline's bound; without one (every candidate vacuous by construction), by a fixed rule the
    first bound of the headline's target, never the smallest of several (that choice would be unpaid)."""
    head = cert.get("headline") or {}
    if head.get("name"):
        return head["name"]
    target = head.get("target") or cert.get("bound_settings", {}).get("headline_target", "token_bpd")
    for b in cert["bounds"]:
        if b.get("target") == target:
            return b["name"]
    return cert["bounds"][0]["name"]


def collect(results: str | Path, bound: str = "headline") -> list[RunRecord]:
    """Every run directory under ``results`` with a certificate (others are skipped).

    ``bound`` picks the number analysed: 'headline' (the certificate's headline, or by a fixed rule the
    first bound of its target when it has none: ``headline_or_fixed``) or a bound name
    (e.g. 'token_freedman_bpd').
    """
    results = Path(results)
    if not results.is_dir():
        raise RunDirError(f"{results} is not a directory.", hint="Give the results directory of a sweep.")
    labels, conditions, replicates, budget_axis = _labels(results)
    records = []
    for cert_path in sorted(results.glob("*/certificate.json")):
        run = cert_path.parent
        manifest_path = run / "manifest.json"
        if not manifest_path.is_file():
            continue
        try:
            manifest, cert = read_json(manifest_path), json.loads(cert_path.read_text())
        except ValueError as exc:
            raise RunDirError(f"{run}: its manifest.json or certificate.json is not valid JSON ({exc}).",
                              hint=f"Restore or recompute it (`sublora bound {run} --force`), or move the run out of "
                                   f"{results}.") from exc
        if not isinstance(manifest, dict) or not isinstance(cert, dict) or manifest.get("kind") == "finetune" \
                or "losses_bits_per_token" not in cert:
            continue  # not a pretraining run's certificate (a finetuning or post-hoc one): nothing to compare
        config = manifest["config"]
        by_name = {b["name"]: b for b in cert["bounds"]}
        name = headline_or_fixed(cert) if bound == "headline" else bound
        if name not in by_name:
            raise RunDirError(f"{run} has no bound named {name!r}.", hint=f"Available: {', '.join(by_name)}.")
        chosen = by_name[name]
        headline_value = (cert.get("headline") or {}).get("value")
        value = headline_value if bound == "headline" and headline_value is not None else chosen["value"]
        point = labels.get(run.name, {})
        if point:
            method = "_".join(v for k, v in point.items() if k in conditions and k != budget_axis) or "all"
            replicate = "_".join(v for k, v in point.items() if k in replicates) or "-"
        else:
            method, replicate = _method_from_config(config), str(manifest.get("seeds", {}))
        report = cert.get("projector_report") or {}
        losses = cert["losses_bits_per_token"]
        records.append(RunRecord(
            name=run.name, path=run, budget=int(config["sublora"]["intrinsic_dim"]), method=method,
            replicate=replicate, projector=config["sublora"]["projector"], code_bits=int(cert["code_bits"]),
            total_bits=float(cert["total_bits"]), empirical=float(chosen["empirical"]), bound=float(value),
            bound_name=name, complexity_term=float(chosen["complexity_term"]),
            confidence_term=float(value - chosen["empirical"] - chosen["complexity_term"]),
            random_guess=float(chosen["random_guess"]), train_bpt=float(losses["quantized_train"]),
            val_bpt=float(losses["quantized_val"]),
            gammas={k: float(v) for k, v in (report.get("gammas") or {}).items()}, mode=report.get("mode"),
            bounds={b["name"]: float(b["value"]) for b in cert["bounds"]},
        ))
    order = {name: i for i, name in enumerate(labels)}  # the grid's order (axis values as written), if known
    records.sort(key=lambda r: (order.get(r.name, len(order)), r.name))
    return records
