"""What a certificate is made of, shared by every command that writes or checks one.

certify (pretraining), verify, classification (finetuning) and the post-hoc bounds each build and read
certificates from the same parts: the format, array hashes, the coder and quantizer the settings name, the
complexity charged, the bounds and headline computed from evidence, the evidence file, the quantized
hypothesis loaded into a model, and reading a certificate back and comparing recomputed fields with it.
They live here so that none of those modules imports another's internals.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from sublora.bounds.container import read_compressed
from sublora.core.bound import Complexity, DocumentEvidence, Evidence, TokenEvidence
from sublora.core.config import RunConfig
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import BoundError, ConfigError, VerificationError
from sublora.core.manifest import read_json
from sublora.core.registry import registry
from sublora.core.rundir import RunDir

FORMAT = "sublora-certificate/2"  # /2: attempt j at delta / (j (j + 1)) (docs/bounds.md section 8); /1 split delta / k
TOLERANCE = 1e-9  # relative and absolute, for every recomputed number (recomputation is deterministic)
RESCORE_MODES = ("quick", "all")
PARTIAL = ("searches",)  # blocks of which only some entries follow from the inputs (the rest: how the model was found)
REBOUND = "Recompute it with `sublora bound RUN_DIR --force` if the run is yours."


def sha256_array(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def coder_for(config: RunConfig):
    return registry("coder").config(config.bound.coder, config.bound.coder_options).build()


def quantizer_for(config: RunConfig, levels: int | None = None):
    options = {"levels": config.bound.levels, **config.bound.quantizer_options}
    if levels is not None:  # a levels_grid candidate
        options["levels"] = levels
    return registry("quantizer").config(config.bound.quantizer, options).build()


def complexity_for(config: RunConfig, code_bits: int) -> Complexity:
    """Bits paid: the file, plus hyperparameter bits and log2 |A| for the alpha grid.

    The alpha grid's union bound is paid here for the complexity-dependent terms and by delta / |A|
    inside every subsample term (the estimators). The levels search costs nothing: the file stores
    the chosen codebook size, so the prefix-free prior covers it (docs/bounds.md section 3). Read
    from the settings, so ``verify`` charges exactly what ``certify`` charged.
    """
    from sublora.bounds.prior import complexity

    return complexity(code_bits, hyper_bits=config.bound.hyper_bits, alphas=config.bound.alphas)


def estimators(config: RunConfig) -> list:
    """The configured bound estimators, built with their options (keyed by family)."""
    from sublora.core.validate import estimator_family

    return [registry("bound").config(spec, config.bound.estimator_options.get(estimator_family(spec))).build()
            for spec in config.bound.estimators]


def compute_bounds(config: RunConfig, evidence: Evidence, complexity: Complexity,
                   delta: float | None = None) -> list[dict[str, Any]]:
    """Every configured estimator's results, each valid with probability >= 1 - delta (default bound.delta)."""
    delta = config.bound.delta if delta is None else delta
    return [r.model_dump(mode="json") for e in estimators(config) for r in e.compute(evidence, complexity, delta)]


def headline_bound(config: RunConfig, evidence: Evidence, complexity: Complexity,
                   delta: float | None = None) -> dict[str, Any]:
    """The smallest ``bound.headline_target`` bound, valid for being picked (``sublora.bounds.headline``)."""
    from sublora.bounds.headline import headline

    delta = config.bound.delta if delta is None else delta
    return headline(estimators(config), evidence, complexity, delta, config.bound.headline_target)


def save_evidence(path: Path, evidence: Evidence) -> None:
    arrays: dict[str, np.ndarray] = {"alphas": np.asarray(evidence.alphas), "vocab_size": np.asarray(evidence.vocab_size)}
    if evidence.tokens is not None:
        t = evidence.tokens
        arrays.update(token_block_indices=t.block_indices, token_loss=t.loss, token_xi2=t.xi2,
                      token_meta=np.asarray([t.n, t.block_size, int(t.sampled)]),
                      token_topk=np.asarray(sorted(t.topk_error), dtype=np.int64),
                      token_topk_error=np.stack([t.topk_error[k] for k in sorted(t.topk_error)])
                      if t.topk_error else np.zeros((0, t.blocks)))
        if t.loss_extremes is not None:
            arrays["token_loss_extremes"] = t.loss_extremes
    if evidence.documents is not None:
        d = evidence.documents
        arrays.update(doc_indices=d.indices, doc_bpd=d.bpd, doc_meta=np.asarray([d.N, d.tokens_scored]),
                      doc_topk=np.asarray(sorted(d.topk_error)),
                      doc_topk_error=np.stack([d.topk_error[k] for k in sorted(d.topk_error)]) if d.topk_error else np.zeros((0, d.n)))
        if d.loss_extremes is not None:
            arrays["doc_loss_extremes"] = d.loss_extremes
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to a temporary name
        np.savez(f, **arrays)


def load_evidence(path: Path, vocab_size: int | None = None) -> Evidence:
    """The evidence file; V is the one stored in it (``vocab_size`` only for files written before it was)."""
    with np.load(path) as z:
        alphas = tuple(float(a) for a in z["alphas"])
        if "vocab_size" in z:
            vocab_size = int(z["vocab_size"])
        if vocab_size is None:
            raise BoundError(f"{path} does not record V and none was given.")
        tokens = documents = None
        if "token_loss" in z:
            n, block, sampled = (int(v) for v in z["token_meta"])
            topk = ({int(k): z["token_topk_error"][i] for i, k in enumerate(z["token_topk"])}
                    if "token_topk" in z else {})
            tokens = TokenEvidence(n=n, block_size=block, block_indices=z["token_block_indices"], sampled=bool(sampled),
                                   loss=z["token_loss"], xi2=z["token_xi2"], topk_error=topk,
                                   loss_extremes=z["token_loss_extremes"] if "token_loss_extremes" in z else None)
        if "doc_bpd" in z:
            N, scored = (int(v) for v in z["doc_meta"])
            topk = {int(k): z["doc_topk_error"][i] for i, k in enumerate(z["doc_topk"])}
            documents = DocumentEvidence(N=N, indices=z["doc_indices"], bpd=z["doc_bpd"], topk_error=topk,
                                         tokens_scored=scored,
                                         loss_extremes=z["doc_loss_extremes"] if "doc_loss_extremes" in z else None)
    return Evidence(vocab_size=vocab_size, alphas=alphas, documents=documents, tokens=tokens)


def load_quantized(model, quantized: dict) -> None:
    """Put the quantized values of every hypothesis tensor into the model: the model that is certified."""
    import torch

    shapes = {name: t.shape for name, t in model.hypothesis().items()}
    model.load_hypothesis({name: torch.from_numpy(q.values).reshape(shapes[name]) for name, q in quantized.items()})


def decode_hypothesis(model, path: Path, config: RunConfig) -> dict:
    """The compressed file decoded with the settings' coder into the model's hypothesis tensors (their sizes)."""
    shapes = {name: int(t.numel()) for name, t in model.hypothesis().items()}
    return read_compressed(path, shapes, coder_for(config))


def decode_certified(model, path: Path, config: RunConfig, cert: dict[str, Any]) -> dict:
    """``decode_hypothesis``, each tensor checked against the certificate's ``hypothesis.NAME.values_sha256``."""
    decoded = decode_hypothesis(model, path, config)
    certified = need(cert, "hypothesis")
    for name, q in decoded.items():
        entry = certified.get(name) if isinstance(certified, dict) else None
        if not isinstance(entry, dict) or sha256_array(q.values) != entry.get("values_sha256"):
            raise VerificationError(f"Decoded tensor {name!r} differs from the certified quantized values.")
    return decoded


def certified_dtype(cert: dict[str, Any]) -> str:
    """The certified predictor's arithmetic (``bound.dtype``, docs/bounds.md section 2); older certificates:
    float32."""
    return (cert.get("bound_settings") or {}).get("dtype", "float32")


def need(data: Any, path: str, where: str = "certificate.json") -> Any:
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


def _in_scope(expected: dict[str, Any], cert: dict[str, Any], partial: tuple[str, ...] = PARTIAL) -> dict[str, Any]:
    """The certificate's keys that ``expected`` covers; of a ``partial`` block, only its recomputed entries."""
    actual = {k: cert[k] for k in expected if k in cert}
    for k in partial:
        if isinstance(actual.get(k), dict) and isinstance(expected.get(k), dict):
            actual[k] = {sub: v for sub, v in actual[k].items() if sub in expected[k]}
    return actual


#: Keys every certificate holds that no verify re-derives as fields: the files and how they were checked.
CHECKED_ELSEWHERE = ("format", "run", "compressed_file", "compressed_sha256", "evidence_file", "evidence_sha256")


def informational_note(expected: dict[str, Any], cert: dict[str, Any], checked: tuple[str, ...] = (),
                       partial: tuple[str, ...] = PARTIAL) -> str:
    """'; informational, not re-derived: a, b.c' for the certificate's keys (and the entries of its ``partial``
    blocks) that ``expected`` does not recompute, besides CHECKED_ELSEWHERE and ``checked``; '' when none."""
    skip = set(CHECKED_ELSEWHERE) | set(checked)
    keys = [k for k in cert if k not in expected and k not in skip]
    keys += [f"{k}.{sub}" for k in partial if isinstance(cert.get(k), dict) and isinstance(expected.get(k), dict)
             for sub in cert[k] if sub not in expected[k]]
    return f"; informational, not re-derived: {', '.join(keys)}" if keys else ""


def refuse_differences(expected: dict[str, Any], cert: dict[str, Any], what: str, tolerance: float,
                       partial: tuple[str, ...] = PARTIAL) -> None:
    found = differences(expected, _in_scope(expected, cert, partial), tolerance=tolerance)
    if found:
        shown = "; ".join(found[:6]) + (f"; and {len(found) - 6} more" if len(found) > 6 else "")
        raise VerificationError(f"certificate.json disagrees with {what} at {len(found)} place(s): {shown}.",
                                hint=REBOUND)


def read_certificate(rd: RunDir) -> dict[str, Any]:
    if not rd.certificate.is_file():
        raise VerificationError(f"{rd.root} has no certificate.json.", hint="Compute it with `sublora bound RUN_DIR`.")
    try:
        cert = read_json(rd.certificate)
    except ValueError as exc:
        raise VerificationError(f"{rd.certificate} is not valid JSON: {exc}.", hint=REBOUND) from exc
    if not isinstance(cert, dict):
        raise VerificationError(f"{rd.certificate} is not a JSON object.", hint=REBOUND)
    check_format(cert, rd.certificate)
    return cert


def check_format(cert: dict[str, Any], path, rebound: str = "Certify again (`sublora bound RUN_DIR --force --charge`: "
                 "the ledger's earlier attempts count) and verify that.") -> None:
    """Refuse a certificate of another format; say what to do about one of the format before."""
    if cert.get("format") == FORMAT:
        return
    if cert.get("format") == "sublora-certificate/1":
        raise VerificationError(
            f"{path} was made by an earlier sublora (format sublora-certificate/1), which split delta over the k "
            "attempts made so far (delta / k): not valid when whether to certify again depends on the first "
            "certificate. Attempt j now uses delta / (j (j + 1)) (docs/bounds.md section 8).",
            hint=rebound)
    raise VerificationError(f"{path} has format {cert.get('format')!r}, expected {FORMAT!r}.")


def certified_config(config: RunConfig, cert: dict[str, Any]) -> RunConfig:
    """The run's config with the bound settings the certificate was made with."""
    settings = need(cert, "bound_settings")
    try:
        # A certificate from before the levels search has no levels_grid: it searched nothing.
        return RunConfig.from_dict({**config.to_dict(), "bound": {"levels_grid": [], **settings}})
    except (ConfigError, TypeError) as exc:
        raise VerificationError(f"certificate.json's bound_settings are not valid settings: {exc}", hint=REBOUND) from exc


def read_evidence(path: Path, vocab_size: int):
    """``load_evidence`` for verify: an unreadable file is a VerificationError naming what is wrong."""
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
    cert = read_certificate(rd)
    if file_sha256(rd.compressed) != need(cert, "compressed_sha256"):
        raise VerificationError(f"{rd.compressed} does not match the certificate's sha256.",
                                hint="Recompute with `sublora bound --force`.")
    model, config, data = load_trained(rd.root)
    config = certified_config(config, cert)
    load_quantized(model, decode_hypothesis(model, rd.compressed, config))
    model.eval()
    return model, config, data
