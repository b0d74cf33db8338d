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
from pathlib import Path
from typing import Any

from sublora.bounds.certificates import (
    informational_note,
    REBOUND,
    RESCORE_MODES,
    TOLERANCE,
    certified_config,
    complexity_for,
    decode_certified,
    load_quantized,
    need,
    read_certificate,
    read_evidence,
    refuse_differences,
)
from sublora.bounds.certificates import differences, load_certified  # noqa: F401  (imported from here before certificates.py)
from sublora.bounds.certify import certificate_fields, vocab_record
from sublora.bounds.rescore import choose, draws_match, rescore
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import ConfigError, VerificationError
from sublora.core.manifest import read_json, write_json
from sublora.core.rundir import RunDir


def derived_fields(config: RunConfig, model, data, decoded: dict, code_bits: int, evidence,
                   model_dir: Path) -> dict[str, Any]:
    """Every certificate field that follows from the compressed file, the settings, the evidence and the
    ledger: certify's own ``certificate_fields`` with the attempts the ledger holds now.

    ``model`` holds the decoded values (its projector report is the certified model's).
    """
    from sublora.bounds.attempts import LEDGER, distinct_attempts, hypothesis_sha256, read_ledger, summary

    try:
        tried = distinct_attempts(read_ledger(Path(model_dir)))
    except (KeyError, TypeError) as exc:
        raise VerificationError(f"{Path(model_dir) / LEDGER} has an entry without a settings hash ({exc}).",
                                hint="Restore it; it is append-only.") from exc
    if not tried:
        raise VerificationError(f"{Path(model_dir) / LEDGER} is missing or empty: the ledger of certification "
                                "attempts fixes the delta of every bound.", hint="Restore it; it is append-only.")
    attempts = summary(Path(model_dir), config.bound,  # attempt j of the ledger: every bound at delta / (j (j + 1))
                       hypothesis_sha256(RunDir(model_dir).compressed))
    return certificate_fields(config, model, data, decoded, code_bits, evidence, attempts)


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
    cert = read_certificate(rd)
    checks = []

    # 1. the run: its manifest is self-consistent, and the certificate is this run's
    # The canonical JSON of the stored config, as config_hash writes it; not re-parsed, which would fill in
    # fields added to the config since the run was made and change the hash.
    stored = need(manifest, "config", "manifest.json")
    own_hash = hashlib.sha256(json.dumps(stored, sort_keys=True).encode()).hexdigest()
    if own_hash != need(manifest, "config_sha256", "manifest.json"):
        raise VerificationError(f"{rd.manifest}: config_sha256 is not the hash of its config (one of them was edited).",
                                hint="Restore the run's original manifest.json.")
    if need(cert, "run.config_sha256") != own_hash:
        raise VerificationError("The certificate was made for another config than this run's manifest.", hint=REBOUND)
    if not rd.best.is_file():
        raise VerificationError(f"{rd.best} is missing: the certificate certifies the model of that checkpoint.",
                                hint="Restore the run's checkpoint directory.")
    if file_sha256(rd.best) != need(cert, "run.checkpoint_sha256"):
        raise VerificationError(f"{rd.best} changed since the certificate was written.", hint=REBOUND)
    run = {"config_sha256": own_hash, "checkpoint": str(rd.best.relative_to(rd.root)),
           "checkpoint_sha256": file_sha256(rd.best), "checkpoint_step": int(read_checkpoint(rd.best)[1].get("step", -1)),
           "data": manifest.get("data")}
    refuse_differences({"run": run}, cert, "this run's manifest and checkpoint", tolerance)
    model, config, data = load_trained(rd.root)
    data.verify_hashes()  # train.bin / val.bin byte for byte: the re-scored tokens are the certified ones
    checks.append("certificate belongs to this run (manifest config hash, config, checkpoint and data hashes match)")

    # 2. the compressed file: the bits charged, decoded to the certified values
    path = rd.compressed
    if need(cert, "compressed_file") != path.name or not path.is_file():
        raise VerificationError(f"Compressed model {path} is missing (the certificate names {cert['compressed_file']!r}).")
    if file_sha256(path) != need(cert, "compressed_sha256"):
        raise VerificationError(f"{path} does not match the certificate's sha256 (corrupted or replaced).",
                                hint="Recompute with `sublora bound --force` if the change was intended.")
    code_bits = 8 * path.stat().st_size
    if code_bits != need(cert, "code_bits"):
        raise VerificationError(f"{path} has {code_bits} bits, the certificate charges {cert['code_bits']}.")
    checks.append(f"compressed file {path.name}: sha256 and size match ({code_bits} bits)")

    config = certified_config(config, cert)
    decoded = decode_certified(model, path, config, cert)
    checks.append(f"decoded {', '.join(decoded)}: identical to the certified quantized values")

    # 3. the evidence: the file certified, the sample the settings draw
    evidence_path = rd.root / "evidence.npz"
    if need(cert, "evidence_file") != evidence_path.name or not evidence_path.is_file():
        raise VerificationError(f"Evidence file {evidence_path} is missing (the certificate names "
                                f"{cert['evidence_file']!r}).", hint=REBOUND)
    if file_sha256(evidence_path) != need(cert, "evidence_sha256"):
        raise VerificationError(f"{evidence_path} changed since the certificate was written (sha256 differs).",
                                hint=REBOUND)
    evidence = read_evidence(evidence_path, data.vocab_size)
    checks.append(draws_match(evidence, config, data, vocab_record(model, data, config)["V"]))

    # 4. every field that follows from the file, the settings and the evidence, recomputed
    complexity = complexity_for(config, code_bits)
    if not math.isclose(complexity.extra_bits, need(cert, "extra_bits"), rel_tol=tolerance, abs_tol=tolerance):
        raise VerificationError(f"The settings charge {complexity.extra_bits} extra bits "
                                f"({complexity.extra_breakdown}), the certificate {cert['extra_bits']}.", hint=REBOUND)
    load_quantized(model, decoded)
    model.eval()
    expected = derived_fields(config, model, data, decoded, code_bits, evidence, rd.root)
    refuse_differences(expected, cert, "what its file, settings and evidence give", tolerance)
    for b in [*expected["bounds"], *([expected["headline"]] if expected["headline"].get("value") is not None else [])]:
        if b["vacuous"] != (b["value"] >= b["random_guess"]):  # a plugin estimator's label, checked
            raise VerificationError(f"Bound {b['name']}: vacuous={b['vacuous']} but value {b['value']} vs random "
                                    f"guess {b['random_guess']}; vacuous means value >= random guess.")
    head = expected["headline"]
    said = ("no headline" if head.get("value") is None else
            f"the headline ({head.get('name')} <= {head['value']:.4f})")
    checks.append(f"recomputed {len(expected['bounds'])} bounds (every key), {said} and {len(expected) - 2} other fields: all match"
                  + informational_note(expected, cert, checked=("bound_settings",)))

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

