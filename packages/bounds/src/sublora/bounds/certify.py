"""From a trained run to a certificate: quantize, code, score, bound.

    certify(run_dir)  writes RUN/model.slc, RUN/evidence.npz, RUN/certificate.json
                      (``sublora.bounds.verify`` checks it again)

The model that is certified is the decoded content of model.slc (quantized w
loaded into the rebuilt network, eval mode); the bits charged are that file's
bits. Every input of every bound is written into the certificate.

Quantization may be followed by quantization-aware fine-tuning (``bound.qat_steps``,
see ``sublora.bounds.qat``) and the codebook size may be searched over
``bound.levels_grid``; every choice made after seeing data is recorded in the certificate's
``searches`` with what it costs (docs/bounds.md sections 3, 8 and 9): the alpha grid log2 |A|
bits plus delta / |A| in each subsample term, the levels search nothing (the file stores the
codebook size), attempt j of a run delta / (j (j + 1)), the headline delta / K.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublora.bounds.certificates import (
    FORMAT,
    coder_for,
    complexity_for,
    compute_bounds,
    headline_bound,
    load_evidence,  # noqa: F401  (imported from here before certificates.py)
    load_quantized,
    quantizer_for,
    save_evidence,
    sha256_array,
)
from sublora.bounds.container import encode_compressed, write_compressed
from sublora.core.bound import Evidence
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import BoundError, ConfigError, RunDirError
from sublora.core.manifest import read_json, write_json
from sublora.core.quantizer import QuantizedVector, tensor_seed
from sublora.core.rundir import RunDir, staged

ProgressFactory = Callable[[str], AbstractContextManager]
LN2 = math.log(2.0)


def _no_progress(_: str):
    return nullcontext(None)


def certificate_fields(config: RunConfig, model, data, quantized: dict[str, QuantizedVector], code_bits: int,
                       evidence: Evidence, attempts: dict[str, Any]) -> dict[str, Any]:
    """Every certificate field that follows from the compressed file, the settings, the evidence and the
    attempts ledger: what ``certify`` writes and ``verify`` recomputes, from this one function.

    ``model`` holds the quantized values (its projector report is the certified model's); ``attempts``
    (``sublora.bounds.attempts.summary``) fixes the delta of every bound: bound.delta / (j (j + 1)) for attempt j.
    """
    delta = attempts["delta_per_attempt"]
    complexity = complexity_for(config, code_bits)
    t, d = evidence.tokens, evidence.documents
    return {
        "code_bits": code_bits,
        "prefix_bits": complexity.prefix_bits,
        "extra_bits": complexity.extra_bits,
        "extra_breakdown": complexity.extra_breakdown,
        "total_bits": complexity.total_bits,
        "hypothesis": {name: {"length": int(q.symbols.size), "levels": int(q.codebook.size),
                              "codebook": [float(c) for c in q.codebook], "values_sha256": sha256_array(q.values)}
                       for name, q in quantized.items()},
        "projector_report": model.projector.report(),  # of the certified (quantized) model, e.g. learned gates
        "d": int(quantized["w"].symbols.size),
        "D": model.D,
        "vocab_size": evidence.vocab_size,
        "vocab": vocab_record(model, data, config),
        "evaluation": {
            "token_level": {"n": t.n, "block_size": t.block_size, "blocks_evaluated": t.blocks,
                            "total_blocks": t.total_blocks, "sampled": t.sampled, "seed": config.bound.seed},
            "document_level": {"N": d.N, "n": d.n, "tokens_scored": d.tokens_scored, "seed": config.bound.seed + 1,
                               "sampled_indices": [int(i) for i in d.indices]},
        },
        "searches": {"attempts": attempts},  # j sets the delta of every bound
        "bounds": compute_bounds(config, evidence, complexity, delta),
        "headline": headline_bound(config, evidence, complexity, delta),
        **coder_checks(config, data),
    }


def coder_checks(config: RunConfig, data) -> dict[str, Any]:
    """``{"coder_checks": record}`` when the coder carries a learned model (an LM prior) and checked that it
    is independent of the run's training data (else it raised); ``{}`` for coders without one."""
    checked = coder_for(config).check_run_data(data.record())
    return {"coder_checks": checked} if checked is not None else {}


def vocab_record(model, data, config: RunConfig) -> dict[str, Any]:
    """The one V every score and bound uses, with where it comes from (docs/bounds.md section 2)."""
    from sublora.bounds.evaluate import model_outputs, predictor_vocab

    V = predictor_vocab(model, data.vocab_size, config.bound.vocab)
    outputs = model_outputs(model)
    note = ("the model's outputs and the tokenizer's ids coincide" if outputs == data.vocab_size else
            f"the model has {outputs - data.vocab_size} outputs the tokenizer never emits: "
            + ("they keep their mass (valid, looser; bound.vocab=tokenizer renormalises over the tokenizer's ids)"
               if config.bound.vocab == "model" else "the distribution is renormalised over the tokenizer's ids"))
    return {"V": V, "rule": config.bound.vocab, "model_outputs": outputs, "tokenizer": int(data.vocab_size),
            "note": note}


def _collect_evidence(model, data, config: RunConfig, vocab: int, progress: ProgressFactory) -> Evidence:
    from sublora.bounds.sharded import collect_evidence  # device, processes: `sublora bound --device/--nproc`

    return collect_evidence(model, data, config, vocab, progress)


@dataclass
class Compression:
    """The chosen quantized hypothesis and how it was found (QAT, levels search)."""

    quantized: dict[str, QuantizedVector]
    plain: dict[str, QuantizedVector]  # the same tensors before QAT (== quantized when QAT is off)
    levels: int
    qat: dict[str, Any] | None = None
    levels_search: dict[str, Any] | None = None


def _quantize(model, data, config: RunConfig, continuous: dict, levels: int | None,
              progress: ProgressFactory) -> Compression:
    """Plain quantization of every hypothesis tensor (at ``levels``, default the settings'), then QAT if on."""
    from sublora.bounds.qat import fine_tune

    b = config.bound
    quantizer = quantizer_for(config, levels)
    levels = quantizer.config.levels
    plain = {name: quantizer.quantize(t.double().numpy(), seed=tensor_seed(b.seed, i))
             for i, (name, t) in enumerate(continuous.items())}
    if not b.qat_steps:
        return Compression(plain, plain, levels)
    with progress(f"quantization-aware fine-tuning (levels {levels})") as bar:
        result = fine_tune(model, data, continuous, plain, steps=b.qat_steps, lr=b.qat_lr,
                           batch_size=b.qat_batch_size, block_size=config.model.block_size, seed=b.seed, progress=bar)
    record = {"steps": b.qat_steps, "lr": b.qat_lr, "batch_size": b.qat_batch_size, "seed": b.seed,
              "tensors": list(result.quantized), "seconds": round(result.seconds, 2),
              "levels_after": {n: int(q.codebook.size) for n, q in result.quantized.items()},
              "codebooks": result.codebooks,  # per tensor: trained or fixed, changed, levels before/after
              "first_step_loss_bpt": result.losses[0] / LN2, "last_step_loss_bpt": result.losses[-1] / LN2}
    return Compression(result.quantized, plain, levels, qat=record)


def _estimate_bound(model, data, config: RunConfig, quantized: dict[str, QuantizedVector], code_bits: int,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The levels search's rule, fixed in advance: the token Azuma bound (bounds.md section 4, smallest over
    the alpha grid) with the candidate's complexity and, in place of the mean smoothed loss over all n
    training tokens, its mean over bound.search_blocks blocks drawn with seed bound.seed + 2.

    A plug-in estimate (no subsampling term): it ranks the candidates as the certified bound would,
    which is all a rule needs. The choice costs no bits (the file stores the codebook size) and this
    sample is drawn independently of the evaluated one (docs/bounds.md section 3).
    """
    from sublora.bounds.estimators.azuma import azuma_bound
    from sublora.bounds.evaluate import score_token_blocks
    from sublora.bounds.inference import predictor
    from sublora.bounds.smoothing import delta_range

    b = config.bound
    V = vocab_record(model, data, config)["V"]
    load_quantized(model, quantized)
    tokens = score_token_blocks(model, data.train, config.model.block_size, tuple(b.alphas), b.search_blocks,
                                seed=b.seed + 2, batch_size=b.batch_size, progress=progress, vocab=V,
                                predict=predictor(model, dtype=b.dtype))  # the predictor to be certified
    nats = complexity_for(config, code_bits).nats
    estimates = []
    for a, alpha in enumerate(b.alphas):
        mean = float(tokens.loss[a].mean())
        estimates.append((azuma_bound(mean, tokens.n, nats, delta_range(alpha, V), b.delta), mean, alpha))
    estimate, empirical, alpha = min(estimates)
    return {"estimate": estimate, "empirical": empirical, "alpha": alpha}


def compress(model, data, config: RunConfig, coder, progress: ProgressFactory = _no_progress) -> Compression:
    """Quantize (+ QAT) every hypothesis tensor; with a levels_grid, keep the candidate of smallest estimate.

    The model's hypothesis may hold quantized values afterwards (a search loads each candidate):
    callers load the chosen ones.
    """
    b = config.bound
    continuous = {name: t.clone() for name, t in model.hypothesis().items()}  # loading quantized values overwrites w
    if not b.levels_grid:
        return _quantize(model, data, config, continuous, None, progress)

    t0 = time.perf_counter()
    tried, rows = [], []
    for levels in b.levels_grid:
        candidate = _quantize(model, data, config, continuous, levels, progress)
        code_bits = 8 * len(encode_compressed(candidate.quantized, coder))
        with progress(f"levels search: score levels {levels}") as bar:
            estimate = _estimate_bound(model, data, config, candidate.quantized, code_bits, bar)
        tried.append(candidate)
        rows.append({"levels": levels, "code_bits": code_bits,
                     "total_bits": complexity_for(config, code_bits).total_bits, **estimate})
    best = min(range(len(rows)), key=lambda i: (rows[i]["estimate"], i))  # ties: the earlier candidate
    chosen = tried[best]
    chosen.levels_search = {
        "bits": 0.0, "grid": list(b.levels_grid), "chosen": chosen.levels,
        "why_free": ("model.slc stores the codebook size, so the prefix-free prior 2^-(L + 2 log2 L) over all files "
                     "already covers the choice; the search sample (seed bound.seed + 2) is drawn independently of "
                     "the evaluated sample (seed bound.seed)"),
        "rule": (f"smallest token Azuma bound (bits/token, best alpha) of the quantized model, with the mean "
                 f"smoothed loss of {b.search_blocks} training blocks drawn with seed {b.seed + 2} in place of the "
                 "mean over all training tokens (no subsampling term); complexity = the candidate's code bits + "
                 "the same extra bits; ties go to the earlier candidate"),
        "candidates": rows, "seconds": round(time.perf_counter() - t0, 2),
    }
    return chosen


def check_evaluation_sizes(config: RunConfig, data) -> None:
    """Refuse a subsample larger than the data it is drawn from (clear error, nothing written)."""
    b = config.bound
    starts, _ = data.doc_bounds("train")
    if b.doc_samples > len(starts):
        raise BoundError(
            f"bound.doc_samples={b.doc_samples} exceeds the {len(starts)} training documents: the sample would "
            "score documents several times over.",
            hint=f"Set --bound.doc_samples to at most {len(starts)}.",
        )
    blocks = (len(data.train) - 1) // config.model.block_size
    if blocks < 1:
        raise BoundError(f"The training stream ({len(data.train)} tokens) is shorter than one block of "
                         f"{config.model.block_size} tokens: nothing to score.")
    if b.token_blocks is not None and b.token_blocks > blocks:
        raise BoundError(
            f"bound.token_blocks={b.token_blocks} exceeds the {blocks} blocks of {config.model.block_size} tokens "
            "in the training stream.",
            hint=f"Set --bound.token_blocks=null to evaluate every block once (no subsampling term), or at most {blocks}.",
        )


def certify(run_dir: str | Path, progress: ProgressFactory | None = None, force: bool = False,
            overrides: dict[str, Any] | None = None, charge: bool = False) -> dict[str, Any]:
    """Compress the run's best checkpoint, score it and write certificate.json; returns the certificate.

    A re-certification with settings not tried before on this run is refused unless ``charge``:
    then every bound is computed at delta / (j (j + 1)), j the attempt's number (``sublora.bounds.attempts``).
    Holds the run directory's lock throughout (one writer per run).
    """
    from sublora.core.runlock import run_lock

    with run_lock(run_dir, "sublora bound"):
        return _certify(run_dir, progress, force, overrides, charge)


def _certify(run_dir: str | Path, progress: ProgressFactory | None, force: bool,
             overrides: dict[str, Any] | None, charge: bool) -> dict[str, Any]:
    from sublora.bounds.attempts import hypothesis_sha256, planned_attempts, record_attempt
    from sublora.bounds.sharded import record as scoring_record
    from sublora.core.checkpoint import read_checkpoint
    from sublora.core.overrides import apply_overrides
    from sublora.core.train import estimate_loss, load_trained

    progress = progress or _no_progress
    rd = RunDir(Path(run_dir))
    manifest = rd.read_manifest()
    __import__("sublora.bounds.classification", fromlist=["x"]).refuse_rebound(rd.root, manifest)  # issue 13.1
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
            others = ", ".join(f"--{k}" for k in overrides if k not in bound_only)
            raise ConfigError(f"Only bound.* settings can be changed when bounding a trained run; got {others}.",
                              hint="Drop them: the trained model is fixed. To change training settings, train a new "
                                   "run (or `sublora run --rerun-changed`).")
        if "bound.levels" in bound_only and "bound.levels_grid" not in bound_only:
            bound_only["bound.levels_grid"] = []  # asking for one codebook size means: no search
        config = RunConfig.from_dict(apply_overrides(config.to_dict(), bound_only))
    check_evaluation_sizes(config, data)  # before anything is computed or written
    planned_attempts(rd.root, config.bound, charge)  # a re-draw of the evaluation sample must be paid for
    vocab = vocab_record(model, data, config)
    _, ckpt_meta = read_checkpoint(rd.best)
    unquantized = estimate_loss(model, data, config)

    # 1. quantize every hypothesis tensor (+ QAT, + levels search) and code it into the file the bound pays for
    coder = coder_for(config)
    coder_checks(config, data)  # a coder's learned model that saw this data is refused before any work
    compression = compress(model, data, config, coder, progress)
    quantized = compression.quantized
    plain_loss = None
    if compression.qat:  # what QAT bought, on the same fixed batches as the other losses
        load_quantized(model, compression.plain)
        plain_loss = estimate_loss(model, data, config)

    # Outputs go to temporary files, moved into place only once everything succeeded: a failure
    # (or an interrupt) midway never leaves a new model.slc beside an old certificate.
    with staged(rd.compressed, rd.root / "evidence.npz") as (tmp_model, tmp_evidence):
        code_bits = write_compressed(tmp_model, quantized, config.bound.coder, coder)
        load_quantized(model, quantized)
        quantized_loss = estimate_loss(model, data, config)

        # 2. score the quantized model and compute every bound, at delta / (j (j + 1)) for attempt j on this run
        hypothesis = hypothesis_sha256(tmp_model)  # another model certified with the same settings is another attempt
        planned_attempts(rd.root, config.bound, charge, hypothesis)
        attempts = record_attempt(rd.root, config.bound, hypothesis)
        evidence = _collect_evidence(model, data, config, vocab["V"], progress)
        save_evidence(tmp_evidence, evidence)
        fields = certificate_fields(config, model, data, quantized, code_bits, evidence, attempts)

    certificate = {
        "format": FORMAT,
        "run": {"config_sha256": manifest.get("config_sha256"), "checkpoint": str(rd.best.relative_to(rd.root)),
                "checkpoint_sha256": file_sha256(rd.best), "checkpoint_step": int(ckpt_meta.get("step", -1)),
                "data": manifest.get("data")},
        "bound_settings": config.bound.model_dump(mode="json"),
        "compressed_file": rd.compressed.name,
        "compressed_sha256": file_sha256(rd.compressed),
        "evidence_file": "evidence.npz",
        "evidence_sha256": file_sha256(rd.root / "evidence.npz"),
        **fields,
        "losses_bits_per_token": {
            "unquantized_train": unquantized["train_bpt"], "unquantized_val": unquantized["val_bpt"],
            "quantized_train": quantized_loss["train_bpt"], "quantized_val": quantized_loss["val_bpt"],
            **({"quantized_before_qat_train": plain_loss["train_bpt"],
                "quantized_before_qat_val": plain_loss["val_bpt"]} if plain_loss else {}),
        },
        "qat": compression.qat,
        "scoring": scoring_record(),  # device, dtype and processes of the scoring (sublora.bounds.sharded)
        "searches": {  # every choice made after seeing the data, what was tried and what it costs
            "hyperparameters": {"bits": config.bound.hyper_bits, "covers": config.bound.hyper_bits_cover,
                                "rule": "asserted by the user (bound.hyper_bits, bound.hyper_bits_cover)"},
            "alpha_grid": {"bits": fields["extra_breakdown"]["alpha_grid"], "candidates": list(config.bound.alphas),
                           "rule": "each estimator reports its smallest bound over the grid: log2 |A| bits in the "
                                   "complexity and delta / |A| in every subsample term"},
            "levels": compression.levels_search,
            **fields["searches"],
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
    headline = certificate["headline"]
    write_json(rd.certificate, certificate)
    from sublora.core.manifest import components

    manifest = read_json(rd.manifest)
    manifest["status"] = "bounded"
    manifest["components"] = components(config)  # bound.* overrides may have chosen another coder or estimators
    manifest["certificate"] = {"file": rd.certificate.name,
                               "best": {k: headline[k] for k in ("name", "value")} if headline.get("name") else {}}
    write_json(rd.manifest, manifest)
    return certificate


