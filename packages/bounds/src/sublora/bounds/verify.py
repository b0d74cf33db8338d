"""Check a certificate end to end, and load the model it certifies.

    verify(run_dir)          decodes model.slc, checks every hash, recomputes every bound
                             from the evidence and re-scores a sample of it with the decoded model
    load_certified(run_dir)  the decoded model.slc in the rebuilt network (what the bound is about)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from sublora.bounds.certify import (
    FORMAT,
    _coder,
    _load_quantized,
    complexity_for,
    compute_bounds,
    headline_bound,
    load_evidence,
    sha256_array,
)
from sublora.bounds.container import read_compressed
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import RunDirError, VerificationError
from sublora.core.manifest import read_json, write_json
from sublora.core.rundir import RunDir


def load_certified(run_dir: str | Path):
    """The model a run's certificate certifies: the decoded model.slc in the rebuilt network, eval mode.

    Returns (model, config, data) like ``load_trained``; checks the file against the certificate's hash.
    """
    from sublora.core.train import load_trained

    rd = RunDir(Path(run_dir))
    if not rd.certificate.is_file() or not rd.compressed.is_file():
        raise RunDirError(f"{rd.root} has no certificate and compressed model yet.",
                          hint="Bound it first: `sublora bound RUN_DIR`.")
    cert = read_json(rd.certificate)
    if file_sha256(rd.compressed) != cert.get("compressed_sha256"):
        raise VerificationError(f"{rd.compressed} does not match the certificate's sha256.",
                                hint="Recompute with `sublora bound --force`.")
    model, config, data = load_trained(rd.root)
    config = RunConfig.from_dict({**config.to_dict(), "bound": {"levels_grid": [], **cert["bound_settings"]}})
    shapes = {name: int(t.numel()) for name, t in model.hypothesis().items()}
    _load_quantized(model, read_compressed(rd.compressed, shapes, _coder(config)))
    model.eval()
    return model, config, data


def verify(run_dir: str | Path, rescore_blocks: int = 4, tolerance: float = 1e-6) -> list[str]:
    """Check a certificate end to end; return the checks passed, raise VerificationError on the first failure."""

    from sublora.bounds.evaluate import score_token_blocks
    from sublora.core.train import load_trained

    rd = RunDir(Path(run_dir))
    manifest = rd.read_manifest()
    if not rd.certificate.is_file():
        raise VerificationError(f"{rd.root} has no certificate.json.", hint="Compute it with `sublora bound RUN_DIR`.")
    try:
        cert = read_json(rd.certificate)
    except ValueError as exc:
        raise VerificationError(f"{rd.certificate} is not valid JSON: {exc}.") from exc
    if cert.get("format") != FORMAT:
        raise VerificationError(f"{rd.certificate} has format {cert.get('format')!r}, expected {FORMAT!r}.")
    checks = []

    if cert["run"]["config_sha256"] != manifest.get("config_sha256"):
        raise VerificationError("The certificate was made for another config than this run's manifest.")
    if file_sha256(rd.best) != cert["run"]["checkpoint_sha256"]:
        raise VerificationError(f"{rd.best} changed since the certificate was written.")
    checks.append("certificate belongs to this run (config and checkpoint hashes match)")

    path = rd.root / cert["compressed_file"]
    if not path.is_file():
        raise VerificationError(f"Compressed model {path} is missing.")
    if file_sha256(path) != cert["compressed_sha256"]:
        raise VerificationError(f"{path} does not match the certificate's sha256 (corrupted or replaced).",
                                hint="Recompute with `sublora bound --force` if the change was intended.")
    if 8 * path.stat().st_size != cert["code_bits"]:
        raise VerificationError(f"{path} has {8 * path.stat().st_size} bits, the certificate charges {cert['code_bits']}.")
    checks.append(f"compressed file {path.name}: sha256 and size match ({cert['code_bits']} bits)")

    model, config, data = load_trained(rd.root)
    # A certificate from before the levels search has no levels_grid: it searched nothing.
    config = RunConfig.from_dict({**config.to_dict(), "bound": {"levels_grid": [], **cert["bound_settings"]}})
    hypothesis = model.hypothesis()
    shapes = {name: int(t.numel()) for name, t in hypothesis.items()}
    decoded = read_compressed(path, shapes, _coder(config))
    for name, q in decoded.items():
        if sha256_array(q.values) != cert["hypothesis"][name]["values_sha256"]:
            raise VerificationError(f"Decoded tensor {name!r} differs from the certified quantized values.")
    checks.append(f"decoded {', '.join(decoded)}: identical to the certified quantized values")

    evidence_path = rd.root / cert["evidence_file"]
    if not evidence_path.is_file() or file_sha256(evidence_path) != cert["evidence_sha256"]:
        raise VerificationError(f"{evidence_path} is missing or changed since the certificate was written.")
    evidence = load_evidence(evidence_path, data.vocab_size)
    complexity = complexity_for(config, cert["code_bits"])
    if not math.isclose(complexity.extra_bits, cert["extra_bits"], rel_tol=tolerance, abs_tol=tolerance):
        raise VerificationError(f"The settings charge {complexity.extra_bits} extra bits "
                                f"({complexity.extra_breakdown}), the certificate {cert['extra_bits']}.")
    recomputed = compute_bounds(config, evidence, complexity)
    by_name = {b["name"]: b for b in recomputed}
    for b in cert["bounds"]:
        again = by_name.get(b["name"])
        if again is None or not math.isclose(again["value"], b["value"], rel_tol=tolerance, abs_tol=tolerance):
            raise VerificationError(f"Bound {b['name']} recomputes to {again and again['value']}, certificate says {b['value']}.")
    headline = headline_bound(config, evidence, complexity, recomputed)
    if cert.get("headline", {}).get("value") is not None and not math.isclose(
            headline["value"], cert["headline"]["value"], rel_tol=tolerance, abs_tol=tolerance):
        raise VerificationError(f"Headline bound recomputes to {headline['value']}, certificate says "
                                f"{cert['headline']['value']}.")
    checks.append(f"recomputed {len(recomputed)} bounds and the headline from the evidence: all match")

    _load_quantized(model, decoded)
    t = evidence.tokens
    k = min(rescore_blocks, t.blocks)
    again = score_token_blocks(model, data.train, t.block_size, evidence.alphas, None, seed=0,
                               batch_size=config.bound.batch_size, _indices=t.block_indices[:k],
                               topk=tuple(t.topk_error))
    same_topk = all(np.allclose(again.topk_error[j], t.topk_error[j][:k]) for j in t.topk_error)
    if not np.allclose(again.loss, t.loss[:, :k], atol=1e-4, rtol=1e-5) or not same_topk:
        raise VerificationError("Re-scoring the decoded model does not reproduce the certified token losses.")
    checks.append(f"re-scored {k} token blocks with the decoded model: losses match the evidence")
    manifest = read_json(rd.manifest)
    manifest["status"] = "verified"
    write_json(rd.manifest, manifest)
    return checks
