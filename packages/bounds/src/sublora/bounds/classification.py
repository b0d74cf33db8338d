"""Finetuned classifiers: train, compress, bound the 0-1 error over i.i.d. examples, verify.

    finetune(config, out)           RUN/manifest.json (kind: finetune), checkpoint/final.safetensors,
                                    model.slc, evidence.npz, certificate.json (kind: classification)
    verify_classification(run_dir)  what ``sublora verify`` runs on such a run (None for any other run)

The bound machinery is pretraining's, with the training examples as the i.i.d. units (docs/bounds.md
section 6 with "document" read as "example", docs/finetune.md): the evidence is a
``DocumentEvidence`` over n examples drawn with replacement from the N training examples, each
with its 0-1 error (``topk_error[1]``) and its smoothed cross-entropy over the C classes (V = C);
the configured estimators (default ``subsampling`` = Occam, ``pacbayes:kl``) and the headline
(``document_top1``: the classification error) are computed by certify's own functions, at
delta / (j (j + 1)) for the j-th distinct settings in the ledger. The hypothesis is w (LoRA and the classification head
both live in the subspace), quantized and coded into model.slc: its bits are charged.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
from sublora.bounds.certificates import (
    FORMAT,
    coder_for,
    informational_note,
    compute_bounds,
    headline_bound,
    load_evidence,
    load_quantized,
    quantizer_for,
    save_evidence,
    sha256_array,
)
from sublora.bounds.container import write_compressed
from sublora.core.bound import DocumentEvidence, Evidence
from sublora.core.errors import RunDirError, VerificationError
from sublora.core.manifest import read_json, versions, write_json
from sublora.core.quantizer import tensor_seed
from sublora.core.rundir import RunDir, staged

KIND = "classification"
RUN_KIND = "finetune"
CHECKPOINT = "checkpoint/final.safetensors"
STATE = "checkpoint/state.pt"  #: the training state while finetuning runs (resume from it)
LN2 = math.log(2.0)
#: A quick verify re-scores every sampled example up to this many (short texts: seconds; 32 let a forged
#: error rate pass most of the time); beyond it, this many drawn at random.
QUICK_EXAMPLES = 4096
REBOUND = "Finetune again into a new --out directory if the run is yours."


def config_sha256(config_dict: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config_dict, sort_keys=True).encode()).hexdigest()


CERTIFIED_BASE, BEST_BASE = "certified (model.slc)", "best checkpoint"


def _load_run(path: Path, which: str | None = None):
    """A sublora run as a base: its certified model when it has a certificate, else its best checkpoint
    (``which`` forces one: verify rebuilds the base the certificate records, even if the run was certified since)."""
    from sublora.core.finetune.model import load_best

    rd = RunDir(Path(path))
    if which == BEST_BASE or (which is None and not (rd.certificate.is_file() and rd.compressed.is_file())):
        return load_best(path)
    from sublora.bounds.certificates import load_certified
    from sublora.core.data.dataset import file_sha256

    model, config, _ = load_certified(path)
    return model, config, {"kind": "run", "path": str(Path(path).resolve()), "model": CERTIFIED_BASE,
                           "file_sha256": file_sha256(rd.compressed)}


def _prepare(config, base_model: str | None = None):
    """(task, model, base, train, val) rebuilt from the config alone: the same in finetune and verify
    (``base_model``: which model of a run base to load, as recorded; default: the certified one if any)."""
    import torch
    from sublora.core.finetune.model import build_classifier
    from sublora.core.finetune.tasks import load_task
    from sublora.core.finetune.train import encode
    from sublora.core.registry import registry

    torch.set_num_threads(config.train.threads)
    task = load_task(config.task.spec, config.task.options)
    model, base = build_classifier(config, task.num_classes, run_loader=lambda path: _load_run(path, base_model))
    tokenizer = registry("tokenizer").config(base.tokenizer, {}).build()
    train = encode(task.train_texts, task.train_labels, tokenizer, config.model.block_size)
    val = encode(task.val_texts, task.val_labels, tokenizer, config.model.block_size)
    return task, model, base, train, val


def _task_record(task) -> dict[str, Any]:
    return {"name": task.name, "classes": task.classes, "sha256": task.sha256(), "N_train": len(task.train_labels),
            "N_val": len(task.val_labels), "train_counts": task.class_counts("train"),
            "val_counts": task.class_counts("val"), "random_guess": task.random_guess(), **task.description}


def finetune(config, out_dir: str | Path, on_step=None, progress=None) -> dict[str, Any]:
    """Train the classifier into ``out_dir`` (new or empty), compress and bound it; returns the certificate."""
    from sublora.core.runlock import run_lock

    rd = RunDir(Path(out_dir))
    with run_lock(rd.root, "sublora finetune"):
        resume = _interrupted(rd, config)
        return _finetune(config, rd, on_step, progress, resume)


def _interrupted(rd: RunDir, config) -> dict[str, Any] | None:
    """The manifest of an interrupted finetuning of the same settings in ``rd`` (to resume), None for an empty
    directory; anything else is refused."""
    from sublora.core.runlock import LOCK_NAME

    if not any(not p.name.startswith(LOCK_NAME) for p in rd.root.iterdir()):
        return None
    manifest = read_json(rd.manifest) if rd.manifest.is_file() else None
    if not isinstance(manifest, dict) or manifest.get("kind") != RUN_KIND or rd.certificate.is_file():
        raise RunDirError(f"{rd.root} exists and is not empty" + (" (a finished finetuning)" if rd.certificate.is_file()
                                                                  else "") + "; finetuning writes a new run directory.",
                          hint="Choose a new or empty --out directory.")
    if manifest.get("config_sha256") != config_sha256(config.to_dict()):
        before, now = manifest.get("config", {}), config.to_dict()
        changed = sorted(f"{section}.{key}" for section in set(before) | set(now)
                         for key in set(before.get(section, {}) or {}) | set(now.get(section, {}) or {})
                         if (before.get(section) or {}).get(key) != (now.get(section) or {}).get(key))
        raise RunDirError(f"{rd.root} holds an interrupted finetuning with other settings (changed: "
                          f"{', '.join(changed[:6]) or 'the config'}).",
                          hint="Rerun with the settings it was started with to resume it, or choose a new --out.")
    return manifest


def _finetune(config, rd: RunDir, on_step, progress, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or resume an interrupted run of the same settings), compress, bound."""
    from sublora.core.finetune.train import FitResult, fit, save_hypothesis, write_config_yaml

    t0 = time.perf_counter()
    task, model, base, train, val = _prepare(config)
    manifest = {
        "format": "sublora-finetune/1", "kind": RUN_KIND, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(), "config_sha256": config_sha256(config.to_dict()), "status": "training",
        "task": _task_record(task), "base": base.identity, "tokenizer": base.tokenizer,
        "model": {"D": model.D, "d": model.d, "layout": model.layout.fingerprint(),
                  "projector": model.projector.config.spec, "tensors": [s.name for s in model.layout.slots
                                                                         if s.name.startswith("head.")]},
        "seeds": {"model.init_seed": config.model.init_seed, "sublora.seed": config.sublora.seed,
                  "train.seed": config.train.seed, "bound.seed": config.bound.seed,
                  "task.options.seed": config.task.options.get("seed", 0)},
        "versions": versions(),
    }
    if resume is not None:  # what the first start recorded stays (its time, its versions); the rest is the same
        manifest.update(created=resume["created"], versions=resume["versions"],
                        resumed=[*resume.get("resumed", []), {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                                              "versions": versions()}])
    if resume is not None and resume.get("status") == "trained":  # trained before the interruption: bound it
        from sublora.core.finetune.train import load_hypothesis

        load_hypothesis(model, rd.root / CHECKPOINT)
        model.eval()
        manifest.update({k: resume[k] for k in ("status", "training", "accuracy")})
        write_json(rd.manifest, manifest)
    else:
        if resume is not None and not (rd.root / STATE).is_file():  # stopped before its first commit: start over
            rd.metrics.unlink(missing_ok=True)
        write_json(rd.manifest, manifest)
        write_config_yaml(rd.config_yaml, config)
        result: FitResult = fit(model, train, val, config, rd.metrics, on_step, state_path=rd.root / STATE)
        save_hypothesis(model, rd.root / CHECKPOINT)
        manifest.update(status="trained", training={"steps": result.steps, "seconds": round(result.seconds, 2),
                                                    "final_loss": result.final_loss, "threads": config.train.threads},
                        accuracy={"train": result.train_accuracy, "val": result.val_accuracy})
        write_json(rd.manifest, manifest)
        (rd.root / STATE).unlink(missing_ok=True)  # the final hypothesis supersedes it
    cert = certify_classification(rd, config, model, task, train, val, base, progress)
    cert["seconds"] = round(time.perf_counter() - t0, 2)
    write_json(rd.certificate, cert)
    manifest.update(status="bounded", certificate={"file": rd.certificate.name, "best": {
        k: cert["headline"].get(k) for k in ("name", "value")}})
    write_json(rd.manifest, manifest)
    return cert


def draw_examples(N: int, n: int, seed: int) -> np.ndarray:
    """The evaluated sample: n of the N training examples, uniformly with replacement, seeded."""
    return np.random.default_rng(seed).integers(0, N, size=n)


def sample_size(config, N: int) -> int:
    """n = bound.doc_samples, at most N (fixed by the sizes alone, before any example is scored)."""
    return min(config.bound.doc_samples, N)


def score_examples(model, data, index: np.ndarray, alphas: tuple[float, ...], C: int):
    """(bpd (A, n) smoothed cross-entropy in bits over the C classes, errors (n,) 0-1, extremes (A, 2), margins)."""
    import torch
    from sublora.core.finetune.train import predict

    unique, inverse = np.unique(index, return_inverse=True)
    logits = predict(model, data, torch.as_tensor(unique)).double()  # (u, C)
    probs = torch.softmax(logits, -1)
    labels = data.labels[torch.as_tensor(unique)]
    p_true = probs[torch.arange(len(unique)), labels]  # (u,)
    bpd = np.stack([(-torch.log2((1 - a) * p_true + a / C)).numpy() for a in alphas])[:, inverse]  # (A, n)
    errors = (logits.argmax(-1) != labels).double().numpy()[inverse]
    top2 = torch.topk(logits, 2, dim=-1).values
    margins = (top2[:, 0] - top2[:, 1]).numpy()[inverse]
    extremes = np.stack([bpd.min(axis=1), bpd.max(axis=1)], axis=1)
    return bpd, errors, extremes, margins


def collect_evidence(model, train, config, C: int) -> Evidence:
    b = config.bound
    N = len(train)
    index = draw_examples(N, sample_size(config, N), b.seed + 1)
    bpd, errors, extremes, _ = score_examples(model, train, index, tuple(b.alphas), C)
    docs = DocumentEvidence(N=N, indices=index, bpd=bpd, topk_error={1: errors}, tokens_scored=int(index.size),
                            loss_extremes=extremes)
    return Evidence(vocab_size=C, alphas=tuple(b.alphas), documents=docs)


def refuse_learned_coder(coder, where: str) -> None:
    """Refuse a coder carrying a learned model (an LM prior, possibly inside ``shortest``) where its
    independence from the bounded examples cannot be checked: it could code the hypothesis for free."""
    from sublora.core.errors import ConfigError, SubloraError

    try:
        checked = coder.check_run_data(None)
    except SubloraError as exc:
        checked = exc
    if checked is not None:
        raise ConfigError(f"bound.coder carries a learned model (an LM prior); {where} certificates cannot check "
                          "that it is independent of the examples they bound, and it could code the model for free.",
                          hint="Use bound.coder=arithmetic, adaptive, or shortest without an lm candidate.")


def class_bits(task_record: dict[str, Any]) -> float:
    """Bits for a class set read off the data (docs/finetune.md): the head's size C, and so D, theta0 and P,
    then depend on the examples, so the prior pays for C (Elias gamma: 2 floor(log2 C) + 1 bits) or, for
    named classes, for their names (the JSON list as a file under the prefix-free prior, L + 2 log2 L).
    A class set the task fixes (stdlib-packages, task.options.num_classes) costs nothing."""
    kind, classes = task_record.get("classes_from_data"), task_record["classes"]
    if kind == "count":
        return 2.0 * math.floor(math.log2(len(classes))) + 1.0
    if kind == "names":
        L = 8 * len(json.dumps(classes, ensure_ascii=False).encode())
        return L + 2.0 * math.log2(L)
    return 0.0


def class_complexity(config, code_bits: int, task_record: dict[str, Any]):
    """The bound settings' complexity (file, hyperparameters, alpha grid) plus ``class_bits``."""
    from sublora.bounds.prior import complexity

    bits = class_bits(task_record)
    return complexity(code_bits, hyper_bits=config.bound.hyper_bits, alphas=config.bound.alphas,
                      extra={"classes": bits} if bits else None)


def classification_fields(config, model, task_record: dict[str, Any], quantized: dict, code_bits: int,
                          evidence: Evidence, attempts: dict[str, Any]) -> dict[str, Any]:
    """Every certificate field that follows from the file, the settings, the task and the evidence:
    what finetuning writes and verify recomputes, from this one function."""
    delta = attempts["delta_per_attempt"]
    complexity = class_complexity(config, code_bits, task_record)
    d = evidence.documents
    C = int(evidence.vocab_size)
    head = headline_bound(config, evidence, complexity, delta)
    guess = task_record["random_guess"]
    return {
        "kind": KIND,
        "code_bits": code_bits, "prefix_bits": complexity.prefix_bits, "extra_bits": complexity.extra_bits,
        "extra_breakdown": complexity.extra_breakdown, "total_bits": complexity.total_bits,
        "hypothesis": {name: {"length": int(q.symbols.size), "levels": int(q.codebook.size),
                              "codebook": [float(c) for c in q.codebook], "values_sha256": sha256_array(q.values)}
                       for name, q in quantized.items()},
        "projector_report": model.projector.report(),
        "d": int(quantized["w"].symbols.size), "D": model.D,
        "vocab_size": C,
        "vocab": {"V": C, "rule": "classes", "model_outputs": C, "tokenizer": None,
                  "note": "the predictor's outputs are the task's C classes; 'document' in a bound's name is one "
                          "training example"},
        "evaluation": {"examples": {"N": d.N, "n": d.n, "seed": config.bound.seed + 1, "with_replacement": True,
                                    "sampled_indices": [int(i) for i in d.indices]}},
        "searches": {"attempts": attempts},
        "bounds": compute_bounds(config, evidence, complexity, delta),
        "headline": head,
        "random_guess": guess,
        "non_vacuous": head.get("value") is not None and head["value"] < guess["majority_error"],
    }


def certify_classification(rd: RunDir, config, model, task, train, val, base, progress=None) -> dict[str, Any]:
    """Quantize and code w, score the quantized classifier, bound its error; returns the certificate."""
    from sublora.bounds.attempts import hypothesis_sha256, planned_attempts, record_attempt
    from sublora.core.data.dataset import file_sha256
    from sublora.core.finetune.train import TRAIN_ACCURACY_EXAMPLES, accuracy, accuracy_index

    b = config.bound
    quantizer = quantizer_for(config)
    continuous = {name: t.clone() for name, t in model.hypothesis().items()}
    quantized = {name: quantizer.quantize(t.double().numpy(), seed=tensor_seed(b.seed, i))
                 for i, (name, t) in enumerate(continuous.items())}
    coder = coder_for(config)
    refuse_learned_coder(coder, "finetuning")
    task_record = _task_record(task)
    with staged(rd.compressed, rd.root / "evidence.npz") as (tmp_model, tmp_evidence):
        code_bits = write_compressed(tmp_model, quantized, b.coder, coder)
        load_quantized(model, quantized)
        model.eval()
        hypothesis = hypothesis_sha256(tmp_model)
        planned_attempts(rd.root, b, False, hypothesis)  # the run's one model: a new one here would be a new attempt
        attempts = record_attempt(rd.root, b, hypothesis)
        evidence = collect_evidence(model, train, config, task.num_classes)
        save_evidence(tmp_evidence, evidence)
        fields = classification_fields(config, model, task_record, quantized, code_bits, evidence, attempts)
    quantized_accuracy = {"train": accuracy(model, train, accuracy_index(len(train), config.train.seed)),
                          "val": accuracy(model, val)}
    manifest = read_json(rd.manifest)
    return {
        "format": FORMAT,
        "run": {"config_sha256": manifest["config_sha256"], "checkpoint": CHECKPOINT,
                "checkpoint_sha256": file_sha256(rd.root / CHECKPOINT), "task_sha256": task_record["sha256"],
                "base": base.identity},
        "bound_settings": b.model_dump(mode="json"),
        "compressed_file": rd.compressed.name, "compressed_sha256": file_sha256(rd.compressed),
        "evidence_file": "evidence.npz", "evidence_sha256": file_sha256(rd.root / "evidence.npz"),
        **fields,
        "task": task_record,
        "scoring": {"device": "cpu", "dtype": "float32", "processes": 1,
                    "note": "finetuning scores its examples on the CPU, in one process"},
        "accuracy": {"unquantized": manifest.get("accuracy"), "quantized": quantized_accuracy,
                     "note": f"train: on {min(TRAIN_ACCURACY_EXAMPLES, len(train))} fixed training examples (seed "
                             "train.seed + 3); val: on every validation example. The bound is on the error of the "
                             "quantized model (1 - accuracy) under the distribution the training examples are drawn "
                             "from"},
    }


def refuse_rebound(run_dir: Path, manifest: dict[str, Any]) -> None:
    """`sublora bound` on a finetuning run: refused (its certificate is written by `sublora finetune`)."""
    if isinstance(manifest, dict) and manifest.get("kind") == RUN_KIND:
        raise RunDirError(f"{run_dir} is a finetuning run: `sublora finetune` compressed and bounded it already.",
                          hint=f"Check its certificate with `sublora verify {run_dir}`. Its bound settings were fixed "
                               "with it: finetuning again into a new --out with other bound settings and keeping the "
                               "better certificate is a choice after seeing this one, which no ledger there counts "
                               "(count it in bound.hyper_bits).")


# ---------------------------------------------------------------- verify


def verify_classification(run_dir: str | Path, rescore_mode: str = "quick", seed: int | None = None,
                          tolerance: float = 1e-9) -> list[str] | None:
    """Check a finetuning certificate end to end (as ``sublora.bounds.verify`` does for pretraining);
    None when ``run_dir`` is not a finetuning run. Raises VerificationError on the first failure."""
    rd = RunDir(Path(run_dir))
    if not rd.manifest.is_file():
        return None
    try:
        manifest = read_json(rd.manifest)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != RUN_KIND:
        return None
    from sublora.core.runlock import run_lock

    with run_lock(rd.root, "sublora verify"):
        return _verify(rd, manifest, rescore_mode, seed, tolerance)


def _verify(rd: RunDir, manifest: dict[str, Any], rescore_mode: str, seed: int | None,
            tolerance: float) -> list[str]:
    from sublora.bounds.attempts import distinct_attempts, hypothesis_sha256, read_ledger, summary
    from sublora.bounds.certificates import RESCORE_MODES, decode_certified, need, read_certificate, refuse_differences
    from sublora.bounds.rescore import ATOL, RTOL
    from sublora.core.data.dataset import file_sha256
    from sublora.core.errors import ConfigError
    from sublora.core.finetune.config import FinetuneConfig

    if rescore_mode not in RESCORE_MODES:
        raise ConfigError(f"Unknown re-scoring mode {rescore_mode!r}.", hint=f"Choose one of {', '.join(RESCORE_MODES)}.")
    cert = read_certificate(rd)
    if cert.get("kind") != KIND:
        raise VerificationError(f"{rd.certificate} is not a classification certificate (kind {cert.get('kind')!r}) "
                                "but the run is a finetuning run.", hint=REBOUND)
    checks = []

    # 1. the run: manifest self-consistent, certificate of this run, checkpoint unchanged
    stored = need(manifest, "config", "manifest.json")
    own = config_sha256(stored)
    if own != need(manifest, "config_sha256", "manifest.json"):
        raise VerificationError(f"{rd.manifest}: config_sha256 is not the hash of its config (one of them was edited).")
    if need(cert, "run.config_sha256") != own:
        raise VerificationError("The certificate was made for another config than this run's manifest.", hint=REBOUND)
    checkpoint = rd.root / CHECKPOINT
    if not checkpoint.is_file() or file_sha256(checkpoint) != need(cert, "run.checkpoint_sha256"):
        raise VerificationError(f"{checkpoint} is missing or changed since the certificate was written.", hint=REBOUND)
    config = FinetuneConfig.from_dict(stored)
    recorded = need(cert, "run.base")
    task, model, base, train, val = _prepare(config, recorded.get("model") if isinstance(recorded, dict) else None)
    if task.sha256() != need(cert, "run.task_sha256"):
        raise VerificationError(f"The task {task.name!r} rebuilt here differs from the certified examples "
                                "(its files or options changed).", hint="Restore the task's data.")
    if base.identity != need(cert, "run.base"):
        raise VerificationError(f"The base model rebuilt here ({base.identity}) is not the certified run's "
                                f"({cert['run']['base']}).", hint="Restore the base model the run was finetuned from.")
    checks.append(f"certificate belongs to this finetuning run (config, checkpoint, {len(train)} + {len(val)} "
                  "task examples and base model match)")

    # 2. the compressed file: the bits charged, decoded to the certified values
    path = rd.compressed
    if need(cert, "compressed_file") != path.name or not path.is_file():
        raise VerificationError(f"Compressed model {path} is missing.", hint=REBOUND)
    if file_sha256(path) != need(cert, "compressed_sha256"):
        raise VerificationError(f"{path} does not match the certificate's sha256 (corrupted or replaced).",
                                hint=REBOUND)
    code_bits = 8 * path.stat().st_size
    decoded = decode_certified(model, path, config, cert)
    checks.append(f"compressed file {path.name}: sha256 matches, {code_bits} bits, decodes to the certified values")

    # 3. the evidence: the file certified, the seeded sample of training examples
    evidence_path = rd.root / "evidence.npz"
    if not evidence_path.is_file() or file_sha256(evidence_path) != need(cert, "evidence_sha256"):
        raise VerificationError(f"{evidence_path} is missing or changed since the certificate was written.",
                                hint=REBOUND)
    C = task.num_classes
    try:
        evidence = load_evidence(evidence_path, C)
    except Exception as exc:
        raise VerificationError(f"{evidence_path} is not a readable evidence file ({exc}).", hint=REBOUND) from exc
    d = evidence.documents
    expected_index = draw_examples(len(train), sample_size(config, len(train)), config.bound.seed + 1)
    if d is None or evidence.tokens is not None or int(evidence.vocab_size) != C or d.N != len(train) \
            or not np.array_equal(np.asarray(d.indices), expected_index):
        raise VerificationError("The evidence is not the seeded sample of training examples the settings draw.",
                                hint=REBOUND)
    checks.append(f"evidence: {d.n} examples drawn with seed {config.bound.seed + 1} from the N = {d.N} training "
                  "examples, as the settings say")

    # 4. every field that follows from the file, the settings, the task and the evidence, recomputed
    if not distinct_attempts(read_ledger(rd.root)):
        raise VerificationError(f"{rd.root / 'bound_attempts.jsonl'} is missing or empty.",
                                hint="Restore it; it is append-only.")
    load_quantized(model, decoded)
    model.eval()
    task_record = _task_record(task)
    expected = {**classification_fields(config, model, task_record, decoded, code_bits, evidence,
                                        summary(rd.root, config.bound, hypothesis_sha256(rd.compressed))),
                "bound_settings": config.bound.model_dump(mode="json"), "task": task_record}
    refuse_differences(expected, cert, "what its file, settings, task and evidence give", tolerance)
    head = expected["headline"]
    said = "no headline" if head.get("value") is None else f"the headline ({head.get('name')} <= {head['value']:.4f})"
    checks.append(f"recomputed {len(expected['bounds'])} bounds, {said}, the majority-class error "
                  f"{expected['random_guess']['majority_error']:.4f}, the bound settings, the task record and every "
                  "other derived field: all match" + informational_note(expected, cert))

    # 5. the evidence's scores are this model's: every sampled example (short texts: cheap), or a random few
    seed = secrets.randbits(32) if seed is None else seed
    positions = np.arange(d.n)
    if rescore_mode == "quick" and d.n > QUICK_EXAMPLES:
        positions = np.sort(np.random.default_rng(seed).choice(d.n, QUICK_EXAMPLES, replace=False))
    t0 = time.perf_counter()
    bpd, errors, _, margins = score_examples(model, train, np.asarray(d.indices)[positions], evidence.alphas, C)
    bad = ~np.isclose(bpd, d.bpd[:, positions], atol=ATOL, rtol=RTOL).all(axis=0)
    bad |= (errors != d.topk_error[1][positions]) & (margins > ATOL)  # a near-tie may round either way
    if bad.any():
        raise VerificationError(f"Re-scoring disagrees with the evidence at example(s) "
                                f"{np.asarray(d.indices)[positions][bad][:5].tolist()}: the evidence is not this "
                                "model's scores.", hint=REBOUND)
    what = "all" if positions.size == d.n else f"{positions.size} (seed {seed}; repeat with --rescore-seed {seed})"
    checks.append(f"re-scored {what} of the {d.n} sampled examples with the decoded model in "
                  f"{time.perf_counter() - t0:.1f} s: scores match the evidence")
    manifest = read_json(rd.manifest)
    manifest["status"] = "verified"
    write_json(rd.manifest, manifest)
    return checks
