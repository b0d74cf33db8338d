"""Check a certificate end to end, and load the model it certifies.

    verify(run_dir)          decodes model.slc, checks every hash, re-derives every field of the certificate
                             that follows from the file, the settings and the evidence (every bound and the
                             headline recomputed with certify's own functions, compared key by key), checks
                             the evidence is the settings' seeded sample, and re-scores part of it (a random
                             part drawn at verify time) or all of it with the decoded model
    load_certified(run_dir)  the decoded model.slc in the rebuilt network (what the bound is about)

Nothing a certificate states about its bounds is trusted: ``vacuous`` and the headline are recomputed,
and a key missing from, or added to, a recomputed block fails. Fields that record how the model was
found (losses, QAT, searches, timings) are informational: they are listed, not re-derived.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

from sublora.bounds.certify import (
    FORMAT,
    _coder,
    _load_quantized,
    certificate_fields,
    complexity_for,
    load_evidence,
    sha256_array,
    vocab_record,
)
from sublora.bounds.container import read_compressed
from sublora.bounds.rescore import choose, draws_match, rescore
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import ConfigError, VerificationError
from sublora.core.manifest import read_json, write_json
from sublora.core.rundir import RunDir

TOLERANCE = 1e-9  # relative and absolute, for every recomputed number (recomputation is deterministic)
RESCORE_MODES = ("quick", "all")
PARTIAL = ("searches",)  # blocks of which only some entries follow from the inputs (the rest: how the model was found)
REBOUND = "Recompute it with `sublora bound RUN_DIR --force` if the run is yours."


def _need(data: Any, path: str, where: str = "certificate.json") -> Any:
    """``data[a][b]...`` for path "a.b...", or a VerificationError naming the missing key."""
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            raise VerificationError(f"{where} has no {path!r} key: it is incomplete or was edited.", hint=REBOUND)
        data = data[key]
    return data


def differences(expected: Any, actual: Any, path: str = "", tolerance: float = TOLERANCE) -> list[str]:
    """Where ``actual`` differs from ``expected``: every key, every list item, numbers within ``tolerance``.

    Integers compare exactly, booleans are not numbers, NaN equals NaN; a key missing or extra is a difference.
    """
    here = path or "(top level)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}".lstrip(".") + ": missing" for k in expected if k not in actual]
        out += [f"{path}.{k}".lstrip(".") + ": not expected" for k in actual if k not in expected]
        for k in expected:
            if k in actual:
                out += differences(expected[k], actual[k], f"{path}.{k}".lstrip("."), tolerance)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{here}: {len(actual)} items, recomputes to {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in differences(e, a, f"{path}[{i}]", tolerance)]
    numbers = (int, float)
    if (isinstance(expected, numbers) and isinstance(actual, numbers)
            and not isinstance(expected, bool) and not isinstance(actual, bool)):
        if isinstance(expected, int) and isinstance(actual, int):
            same = expected == actual
        else:
            same = (math.isnan(expected) and math.isnan(actual)) or math.isclose(
                expected, actual, rel_tol=tolerance, abs_tol=tolerance)
    else:
        same = type(expected) is type(actual) and expected == actual
    return [] if same else [f"{here}: certificate says {_short(actual)}, recomputes to {_short(expected)}"]


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _in_scope(expected: dict[str, Any], cert: dict[str, Any]) -> dict[str, Any]:
    """The certificate's keys that ``expected`` covers; of a PARTIAL block, only its recomputed entries."""
    actual = {k: cert[k] for k in expected if k in cert}
    for k in PARTIAL:
        if isinstance(actual.get(k), dict) and isinstance(expected.get(k), dict):
            actual[k] = {sub: v for sub, v in actual[k].items() if sub in expected[k]}
    return actual


def _refuse_differences(expected: dict[str, Any], cert: dict[str, Any], what: str, tolerance: float) -> None:
    found = differences(expected, _in_scope(expected, cert), tolerance=tolerance)
    if found:
        shown = "; ".join(found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
        raise VerificationError(f"certificate.json disagrees with {what} at {len(found)} place(s): {shown}.",
                                hint=REBOUND)


def derived_fields(config: RunConfig, model, data, decoded: dict, code_bits: int, evidence,
                   model_dir: Path) -> dict[str, Any]:
    """Every certificate field that follows from the compressed file, the settings, the evidence and the
    ledger: certify's own ``certificate_fields`` with the attempts the ledger holds now.

    ``model`` holds the decoded values (its projector report is the certified model's).
    """
    from sublora.bounds.attempts import LEDGER, distinct_attempts, read_ledger, summary

    try:
        tried = distinct_attempts(read_ledger(Path(model_dir)))
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"{Path(model_dir) / LEDGER} has an entry without a settings hash ({exc}).",
                                hint="Restore it; it is append-only.") from exc
    if not tried:
        raise VerificationError(f"{Path(model_dir) / LEDGER} is missing or empty: the ledger of certification "
                                "attempts fixes the delta of every bound.", hint="Restore it; it is append-only.")
    attempts = summary(Path(model_dir), config.bound)  # k distinct settings tried: every bound at delta / k
    return certificate_fields(config, model, data, decoded, code_bits, evidence, attempts)


def _read_certificate(rd: RunDir) -> dict[str, Any]:
    if not rd.certificate.is_file():
        raise VerificationError(f"{rd.root} has no certificate.json.", hint="Compute it with `sublora bound RUN_DIR`.")
    try:
        cert = read_json(rd.certificate)
    except ValueError as exc:
        raise VerificationError(f"{rd.certificate} is not valid JSON: {exc}.", hint=REBOUND) from exc
    if not isinstance(cert, dict):
        raise VerificationError(f"{rd.certificate} is not a JSON object.", hint=REBOUND)
    if cert.get("format") != FORMAT:
        raise VerificationError(f"{rd.certificate} has format {cert.get('format')!r}, expected {FORMAT!r}.")
    return cert


def _certified_config(config: RunConfig, cert: dict[str, Any]) -> RunConfig:
    """The run's config with the bound settings the certificate was made with."""
    settings = _need(cert, "bound_settings")
    try:
        # A certificate from before the levels search has no levels_grid: it searched nothing.
        return RunConfig.from_dict({**config.to_dict(), "bound": {"levels_grid": [], **settings}})
    except (ConfigError, TypeError) as exc:
        raise VerificationError(f"certificate.json's bound_settings are not valid settings: {exc}", hint=REBOUND) from exc


def _load_evidence(path: Path, vocab_size: int):
    try:
        return load_evidence(path, vocab_size)
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise VerificationError(f"{path} is not a readable evidence file ({type(exc).__name__}: {exc}).",
                                hint=REBOUND) from exc


def load_certified(run_dir: str | Path):
    """The model a run's certificate certifies: the decoded model.slc in the rebuilt network, eval mode.

    Returns (model, config, data) like ``load_trained``; checks the file against the certificate's hash.
    """
    from sublora.core.train import load_trained

    rd = RunDir(Path(run_dir))
    rd.require(certified=True)
    cert = _read_certificate(rd)
    if file_sha256(rd.compressed) != _need(cert, "compressed_sha256"):
        raise VerificationError(f"{rd.compressed} does not match the certificate's sha256.",
                                hint="Recompute with `sublora bound --force`.")
    model, config, data = load_trained(rd.root)
    config = _certified_config(config, cert)
    shapes = {name: int(t.numel()) for name, t in model.hypothesis().items()}
    _load_quantized(model, read_compressed(rd.compressed, shapes, _coder(config)))
    model.eval()
    return model, config, data


def verify(run_dir: str | Path, rescore_mode: str = "quick", seed: int | None = None,
           tolerance: float = TOLERANCE) -> list[str]:
    """Check a certificate end to end; return the checks passed, raise VerificationError on the first failure.

    ``rescore_mode``: "quick" re-scores QUICK_BLOCKS token blocks and QUICK_DOCUMENTS documents chosen at
    random with ``seed`` (fresh entropy when None; reported, so a check can be repeated), "all" every sampled
    block and document.
    """
    from sublora.bounds.posthoc.verify import is_posthoc, verify_posthoc  # issue 13.2: `sublora bound-model` output
    if is_posthoc(run_dir): return verify_posthoc(run_dir, rescore_mode, seed, tolerance)  # noqa: E701
    from sublora.bounds.classification import verify_classification  # issue 13.1: `sublora finetune` output
    if (checks := verify_classification(run_dir, rescore_mode, seed, tolerance)) is not None: return checks
    from sublora.core.runlock import run_lock

    with run_lock(run_dir, "sublora verify"):
        return _verify(run_dir, rescore_mode, seed, tolerance)


def _verify(run_dir: str | Path, rescore_mode: str, seed: int | None, tolerance: float) -> list[str]:
    from sublora.core.checkpoint import read_checkpoint
    from sublora.core.train import load_trained

    if rescore_mode not in RESCORE_MODES:
        raise ConfigError(f"Unknown re-scoring mode {rescore_mode!r}.", hint=f"Choose one of {', '.join(RESCORE_MODES)}.")
    rd = RunDir(Path(run_dir))
    manifest = rd.read_manifest()
    cert = _read_certificate(rd)
    checks = []

    # 1. the run: its manifest is self-consistent, and the certificate is this run's
    # The canonical JSON of the stored config, as config_hash writes it; not re-parsed, which would fill in
    # fields added to the config since the run was made and change the hash.
    stored = _need(manifest, "config", "manifest.json")
    own_hash = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()
    if own_hash != _need(manifest, "config_sha256", "manifest.json"):
        raise VerificationError(f"{rd.manifest}: config_sha256 is not the hash of its config (one of them was edited).",
                                hint="Restore the run's original manifest.json.")
    if _need(cert, "run.config_sha256") != own_hash:
        raise VerificationError("The certificate was made for another config than this run's manifest.", hint=REBOUND)
    if not rd.best.is_file():
        raise VerificationError(f"{rd.best} is missing: the certificate certifies the model of that checkpoint.",
                                hint="Restore the run's checkpoint directory.")
    if file_sha256(rd.best) != _need(cert, "run.checkpoint_sha256"):
        raise VerificationError(f"{rd.best} changed since the certificate was written.", hint=REBOUND)
    run = {"config_sha256": own_hash, "checkpoint": str(rd.best.relative_to(rd.root)),
           "checkpoint_sha256": file_sha256(rd.best), "checkpoint_step": int(read_checkpoint(rd.best)[1].get("step", -1)),
           "data": manifest.get("data")}
    _refuse_differences({"run": run}, cert, "this run's manifest and checkpoint", tolerance)
    model, config, data = load_trained(rd.root)
    data.verify_hashes()  # train.bin / val.bin byte for byte: the re-scored tokens are the certified ones
    checks.append("certificate belongs to this run (manifest config hash, config, checkpoint and data hashes match)")

    # 2. the compressed file: the bits charged, decoded to the certified values
    path = rd.compressed
    if _need(cert, "compressed_file") != path.name or not path.is_file():
        raise VerificationError(f"Compressed model {path} is missing (the certificate names {cert['compressed_file']!r}).")
    if file_sha256(path) != _need(cert, "compressed_sha256"):
        raise VerificationError(f"{path} does not match the certificate's sha256 (corrupted or replaced).",
                                hint="Recompute with `sublora bound --force` if the change was intended.")
    code_bits = 8 * path.stat().st_size
    if code_bits != _need(cert, "code_bits"):
        raise VerificationError(f"{path} has {code_bits} bits, the certificate charges {cert['code_bits']}.")
    checks.append(f"compressed file {path.name}: sha256 and size match ({code_bits} bits)")

    config = _certified_config(config, cert)
    shapes = {name: int(t.numel()) for name, t in model.hypothesis().items()}
    decoded = read_compressed(path, shapes, _coder(config))
    certified = _need(cert, "hypothesis")
    for name, q in decoded.items():
        entry = certified.get(name) if isinstance(certified, dict) else None
        if not isinstance(entry, dict) or sha256_array(q.values) != entry.get("values_sha256"):
            raise VerificationError(f"Decoded tensor {name!r} differs from the certified quantized values.")
    checks.append(f"decoded {', '.join(decoded)}: identical to the certified quantized values")

    # 3. the evidence: the file certified, the sample the settings draw
    evidence_path = rd.root / "evidence.npz"
    if _need(cert, "evidence_file") != evidence_path.name or not evidence_path.is_file():
        raise VerificationError(f"Evidence file {evidence_path} is missing (the certificate names "
                                f"{cert['evidence_file']!r}).", hint=REBOUND)
    if file_sha256(evidence_path) != _need(cert, "evidence_sha256"):
        raise VerificationError(f"{evidence_path} changed since the certificate was written (sha256 differs).",
                                hint=REBOUND)
    evidence = _load_evidence(evidence_path, data.vocab_size)
    checks.append(draws_match(evidence, config, data, vocab_record(model, data, config)["V"]))

    # 4. every field that follows from the file, the settings and the evidence, recomputed
    complexity = complexity_for(config, code_bits)
    if not math.isclose(complexity.extra_bits, _need(cert, "extra_bits"), rel_tol=tolerance, abs_tol=tolerance):
        raise VerificationError(f"The settings charge {complexity.extra_bits} extra bits "
                                f"({complexity.extra_breakdown}), the certificate {cert['extra_bits']}.", hint=REBOUND)
    _load_quantized(model, decoded)
    model.eval()
    expected = derived_fields(config, model, data, decoded, code_bits, evidence, rd.root)
    _refuse_differences(expected, cert, "what its file, settings and evidence give", tolerance)
    for b in [*expected["bounds"], *([expected["headline"]] if expected["headline"].get("value") is not None else [])]:
        if b["vacuous"] != (b["value"] >= b["random_guess"]):  # a plugin estimator's label, checked
            raise VerificationError(f"Bound {b['name']}: vacuous={b['vacuous']} but value {b['value']} vs random "
                                    f"guess {b['random_guess']}; vacuous means value >= random guess.")
    head = expected["headline"]
    informational = [k for k in cert if k not in expected and k not in (
        "format", "run", "bound_settings", "compressed_file", "compressed_sha256", "evidence_file", "evidence_sha256")]
    informational += [f"{k}.{sub}" for k in PARTIAL if isinstance(cert.get(k), dict) and k in expected
                      for sub in cert[k] if sub not in expected[k]]
    value = "none" if head.get("value") is None else f"{head['value']:.4f}"
    checks.append(f"recomputed {len(expected['bounds'])} bounds (every key), the headline ({head.get('name')} <= "
                  f"{value}) and {len(expected) - 2} other fields: all match"
                  + (f"; informational, not re-derived: {', '.join(informational)}" if informational else ""))

    # 5. the evidence's scores are this model's: a sample drawn now, or everything
    if seed is None:
        seed = secrets.randbits(32)
    choice = choose(evidence, rescore_mode == "all", seed)
    t0 = time.perf_counter()
    rescore(model, data, config, evidence, choice)
    seconds = time.perf_counter() - t0
    t, d = evidence.tokens, evidence.documents
    if choice.everything:
        checks.append(f"re-scored all {t.blocks} sampled token blocks and all {len(choice.documents)} sampled documents "
                      f"with the decoded model in {seconds:.1f} s: scores match the evidence")
    else:
        checks.append(f"re-scored {len(choice.blocks)} of {t.blocks} token blocks and {len(choice.documents)} of "
                      f"{len(set(d.indices.tolist()))} documents, chosen at random (seed {seed}; repeat with "
                      f"--rescore-seed {seed}; all of them: --rescore all) in {seconds:.1f} s: scores match the evidence")

    manifest = read_json(rd.manifest)
    manifest["status"] = "verified"
    write_json(rd.manifest, manifest)
    return checks

