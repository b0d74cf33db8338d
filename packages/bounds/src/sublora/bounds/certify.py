"""From a trained run to a certificate: quantize, code, score, bound; and verify it again.

    certify(run_dir)  writes RUN/model.slc, RUN/evidence.npz, RUN/certificate.json
    verify(run_dir)   decodes model.slc, checks every hash, recomputes every bound
                      from the evidence and re-scores a sample of it with the decoded model

The model that is certified is the decoded content of model.slc (quantized w
loaded into the rebuilt network, eval mode); the bits charged are that file's
bits. Every input of every bound is written into the certificate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from sublora.core.bound import Complexity, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import RunDirError, VerificationError
from sublora.core.manifest import read_json, write_json
from sublora.core.registry import registry
from sublora.core.rundir import RunDir

ProgressFactory = Callable[[str], AbstractContextManager]
FORMAT = "sublora-certificate/1"


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _no_progress(_: str):
    return nullcontext(None)


def _coder(config: RunConfig):
    return registry("coder").config(config.bound.coder, config.bound.coder_options).build()


def _quantizer(config: RunConfig):
    options = {"levels": config.bound.levels, **config.bound.quantizer_options}
    return registry("quantizer").config(config.bound.quantizer, options).build()


def complexity_for(config: RunConfig, code_bits: int) -> Complexity:
    """Bits paid: the file, plus hyperparameter bits and the union bound over the alpha grid."""
    grid_bits = math.log2(len(config.bound.alphas))
    return Complexity(code_bits=code_bits, extra_bits=config.bound.hyper_bits + grid_bits,
                      extra_breakdown={"hyperparameters": config.bound.hyper_bits, "alpha_grid": grid_bits})


def compute_bounds(config: RunConfig, evidence: Evidence, complexity: Complexity) -> list[dict[str, Any]]:
    results = []
    for spec in config.bound.estimators:
        family = spec.split(":")[0]
        estimator = registry("bound").config(spec, config.bound.estimator_options.get(family)).build()
        results += [r.model_dump(mode="json") for r in estimator.compute(evidence, complexity, config.bound.delta)]
    return results


def _save_evidence(path: Path, evidence: Evidence) -> None:
    arrays: dict[str, np.ndarray] = {"alphas": np.asarray(evidence.alphas)}
    if evidence.tokens is not None:
        t = evidence.tokens
        arrays.update(token_block_indices=t.block_indices, token_loss=t.loss, token_xi2=t.xi2,
                      token_meta=np.asarray([t.n, t.block_size, int(t.sampled)]))
    if evidence.documents is not None:
        d = evidence.documents
        arrays.update(doc_indices=d.indices, doc_bpd=d.bpd, doc_meta=np.asarray([d.N, d.tokens_scored]),
                      doc_topk=np.asarray(sorted(d.topk_error)),
                      doc_topk_error=np.stack([d.topk_error[k] for k in sorted(d.topk_error)]) if d.topk_error else np.zeros((0, d.n)))
    tmp = path.with_name(".evidence.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_evidence(path: Path, vocab_size: int) -> Evidence:
    with np.load(path) as z:
        alphas = tuple(float(a) for a in z["alphas"])
        tokens = documents = None
        if "token_loss" in z:
            n, block, sampled = (int(v) for v in z["token_meta"])
            tokens = TokenEvidence(n=n, block_size=block, block_indices=z["token_block_indices"], sampled=bool(sampled),
                                   loss=z["token_loss"], xi2=z["token_xi2"])
        if "doc_bpd" in z:
            N, scored = (int(v) for v in z["doc_meta"])
            topk = {int(k): z["doc_topk_error"][i] for i, k in enumerate(z["doc_topk"])}
            documents = DocumentEvidence(N=N, indices=z["doc_indices"], bpd=z["doc_bpd"], topk_error=topk, tokens_scored=scored)
    return Evidence(vocab_size=vocab_size, alphas=alphas, documents=documents, tokens=tokens)


def _collect_evidence(model, data, config: RunConfig, progress: ProgressFactory) -> Evidence:
    from sublora.bounds.evaluate import score_documents, score_token_blocks

    b = config.bound
    alphas = tuple(b.alphas)
    with progress("score token blocks") as bar:
        tokens = score_token_blocks(model, data.train, config.model.block_size, alphas, b.token_blocks,
                                    seed=b.seed, batch_size=b.batch_size, progress=bar)
    with progress("score documents") as bar:
        starts, ends = data.doc_bounds("train")
        documents = score_documents(model, data.train, starts, ends, data.eot_id, config.model.block_size,
                                    b.doc_stride or config.model.block_size, alphas, b.topk,
                                    b.doc_samples, seed=b.seed + 1, batch_size=b.batch_size, progress=bar)
    return Evidence(vocab_size=data.vocab_size, alphas=alphas, documents=documents, tokens=tokens)


def certify(run_dir: str | Path, progress: ProgressFactory | None = None, force: bool = False,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compress the run's best checkpoint, score it and write certificate.json; returns the certificate."""
    import torch

    from sublora.core.checkpoint import read_checkpoint
    from sublora.core.overrides import apply_overrides
    from sublora.core.train import estimate_loss, load_trained

    progress = progress or _no_progress
    rd = RunDir(Path(run_dir))
    manifest = rd.read_manifest()
    if manifest.get("status") not in ("trained", "bounded", "verified"):
        raise RunDirError(f"{rd.root} has not finished training (status: {manifest.get('status')}).",
                          hint="Finish it first: rerun the same `sublora train --out` command to resume.")
    if rd.certificate.exists() and not force:
        raise RunDirError(f"{rd.root} already holds a certificate.",
                          hint="Use `sublora verify` to check it, or `sublora bound --force` to recompute it.")
    t0 = time.perf_counter()
    model, config, data = load_trained(rd.root)
    if overrides:
        bound_only = {k: v for k, v in overrides.items() if k.startswith("bound.")}
        if len(bound_only) != len(overrides):
            raise RunDirError("Only bound.* settings can be changed when bounding a trained run.")
        config = RunConfig.from_dict(apply_overrides(config.to_dict(), bound_only))
    _, ckpt_meta = read_checkpoint(rd.best)
    unquantized = estimate_loss(model, data, config)

    # 1. quantize every hypothesis tensor and code it into the file the bound pays for
    quantizer, coder = _quantizer(config), _coder(config)
    hypothesis = model.hypothesis()
    quantized = {name: quantizer.quantize(t.double().numpy(), seed=config.bound.seed + i)
                 for i, (name, t) in enumerate(hypothesis.items())}
    from sublora.bounds.container import write_compressed

    tmp = rd.compressed.with_name(".model.slc.tmp")
    code_bits = write_compressed(tmp, quantized, config.bound.coder, coder)
    tmp.replace(rd.compressed)
    _load_quantized(model, quantized)
    quantized_loss = estimate_loss(model, data, config)

    # 2. score the quantized model and compute every bound
    evidence = _collect_evidence(model, data, config, progress)
    _save_evidence(rd.root / "evidence.npz", evidence)
    complexity = complexity_for(config, code_bits)
    bounds = compute_bounds(config, evidence, complexity)

    w = quantized["w"]
    certificate = {
        "format": FORMAT,
        "run": {"config_sha256": manifest.get("config_sha256"), "checkpoint": str(rd.best.relative_to(rd.root)),
                "checkpoint_sha256": file_sha256(rd.best), "checkpoint_step": int(ckpt_meta.get("step", -1)),
                "data": manifest.get("data")},
        "bound_settings": config.bound.model_dump(mode="json"),
        "compressed_file": rd.compressed.name,
        "compressed_sha256": file_sha256(rd.compressed),
        "code_bits": code_bits,
        "prefix_bits": complexity.prefix_bits,
        "extra_bits": complexity.extra_bits,
        "extra_breakdown": complexity.extra_breakdown,
        "total_bits": complexity.total_bits,
        "hypothesis": {name: {"length": int(q.symbols.size), "levels": int(q.codebook.size),
                              "codebook": [float(c) for c in q.codebook], "values_sha256": sha256_array(q.values)}
                       for name, q in quantized.items()},
        "projector_report": model.projector.report(),  # of the certified (quantized) model, e.g. learned gates
        "d": int(w.symbols.size),
        "D": model.D,
        "vocab_size": data.vocab_size,
        "evidence_file": "evidence.npz",
        "evidence_sha256": file_sha256(rd.root / "evidence.npz"),
        "evaluation": {
            "token_level": {"n": evidence.tokens.n, "block_size": evidence.tokens.block_size,
                            "blocks_evaluated": evidence.tokens.blocks, "total_blocks": evidence.tokens.total_blocks,
                            "sampled": evidence.tokens.sampled, "seed": config.bound.seed},
            "document_level": {"N": evidence.documents.N, "n": evidence.documents.n,
                               "tokens_scored": evidence.documents.tokens_scored, "seed": config.bound.seed + 1,
                               "sampled_indices": [int(i) for i in evidence.documents.indices]},
        },
        "losses_bits_per_token": {
            "unquantized_train": unquantized["train_bpt"], "unquantized_val": unquantized["val_bpt"],
            "quantized_train": quantized_loss["train_bpt"], "quantized_val": quantized_loss["val_bpt"],
        },
        "bounds": bounds,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(rd.certificate, certificate)
    manifest = read_json(rd.manifest)
    manifest["status"] = "bounded"
    manifest["certificate"] = {"file": rd.certificate.name, "best": _best(bounds)}
    write_json(rd.manifest, manifest)
    return certificate


def _load_quantized(model, quantized: dict) -> None:
    """Put the quantized values of every hypothesis tensor into the model: the model that is certified."""
    import torch

    shapes = {name: t.shape for name, t in model.hypothesis().items()}
    model.load_hypothesis({name: torch.from_numpy(q.values).reshape(shapes[name]) for name, q in quantized.items()})


def _best(bounds: list[dict[str, Any]]) -> dict[str, Any]:
    bpd = [b for b in bounds if b["units"].startswith("bits")]
    best = min(bpd, key=lambda b: b["value"]) if bpd else None
    return {"name": best["name"], "value": best["value"]} if best else {}


def verify(run_dir: str | Path, rescore_blocks: int = 4, tolerance: float = 1e-6) -> list[str]:
    """Check a certificate end to end; return the checks passed, raise VerificationError on the first failure."""
    import torch

    from sublora.bounds.container import read_compressed
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
    config = RunConfig.from_dict({**config.to_dict(), "bound": cert["bound_settings"]})
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
    recomputed = compute_bounds(config, evidence, complexity)
    by_name = {b["name"]: b for b in recomputed}
    for b in cert["bounds"]:
        again = by_name.get(b["name"])
        if again is None or not math.isclose(again["value"], b["value"], rel_tol=tolerance, abs_tol=tolerance):
            raise VerificationError(f"Bound {b['name']} recomputes to {again and again['value']}, certificate says {b['value']}.")
    checks.append(f"recomputed {len(recomputed)} bounds from the evidence: all match")

    _load_quantized(model, decoded)
    t = evidence.tokens
    k = min(rescore_blocks, t.blocks)
    again = score_token_blocks(model, data.train, t.block_size, evidence.alphas, None, seed=0,
                               batch_size=config.bound.batch_size, _indices=t.block_indices[:k])
    if not np.allclose(again.loss, t.loss[:, :k], atol=1e-4, rtol=1e-5):
        raise VerificationError("Re-scoring the decoded model does not reproduce the certified token losses.")
    checks.append(f"re-scored {k} token blocks with the decoded model: losses match the evidence")
    manifest = read_json(rd.manifest)
    manifest["status"] = "verified"
    write_json(rd.manifest, manifest)
    return checks
