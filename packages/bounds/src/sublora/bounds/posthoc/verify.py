"""`sublora verify OUT` for a post-hoc certificate: rebuild, decode, re-derive, re-score.

Called from ``sublora.bounds.verify.verify`` when the certificate's kind is ``posthoc``. Checks, in order: the
architecture and compressed files against their hashes and the bits charged; the data against its hashes; the
network rebuilt from architecture.json with model.slc decoded into it, tensor by tensor; the evidence is the
settings' seeded sample; every derived field (bits, bounds, headline) recomputed with ``posthoc_fields`` and
compared key by key; and part (or all) of the evidence re-scored with the decoded model.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from sublora.core.errors import ConfigError, VerificationError

REBOUND = "Recompute it with `sublora bound-model MODEL_DIR --data DATA --out OUT --force`."


def is_posthoc(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a post-hoc certificate (cheap: reads one JSON file)."""
    path = Path(run_dir) / "certificate.json"
    if not path.is_file() or (Path(run_dir) / "manifest.json").is_file():
        return False
    try:
        return json.loads(path.read_text()).get("kind") == "posthoc"
    except (ValueError, AttributeError):
        return False


def verify_posthoc(run_dir: str | Path, rescore_mode: str = "quick", seed: int | None = None,
                   tolerance: float | None = None) -> list[str]:
    """Check a post-hoc certificate end to end; return the checks passed, raise VerificationError on the first failure."""
    from sublora.core.runlock import run_lock

    with run_lock(run_dir, "sublora verify"):
        return _verify(Path(run_dir), rescore_mode, seed, tolerance)


def _verify(out: Path, rescore_mode: str, seed: int | None, tolerance: float | None) -> list[str]:
    from sublora.bounds.attempts import LEDGER, distinct_attempts, hypothesis_sha256, read_ledger, summary
    from sublora.bounds.certificates import (RESCORE_MODES, TOLERANCE, check_format, informational_note,
                                             load_evidence, need, refuse_differences)
    from sublora.bounds.certify import vocab_record
    from sublora.bounds.posthoc.certify import (
        ARCH_FILE,
        architecture_bits,
        build_from_architecture,
        posthoc_fields,
        scoring_config,
    )
    from sublora.bounds.posthoc.compress import entries, read_into, tensor_list
    from sublora.bounds.posthoc.predictor import CausalLMPredictor
    from sublora.bounds.posthoc.settings import PosthocSettings
    from sublora.bounds.rescore import choose, draws_match, rescore
    from sublora.core.data import PreparedData
    from sublora.core.data.dataset import file_sha256
    from sublora.core.registry import registry

    tolerance = TOLERANCE if tolerance is None else tolerance
    if rescore_mode not in RESCORE_MODES:
        raise ConfigError(f"Unknown re-scoring mode {rescore_mode!r}.", hint=f"Choose one of {', '.join(RESCORE_MODES)}.")
    try:
        cert = json.loads((out / "certificate.json").read_text())
    except ValueError as exc:
        raise VerificationError(f"{out / 'certificate.json'} is not valid JSON: {exc}.", hint=REBOUND) from exc
    check_format(cert, out / "certificate.json", REBOUND)
    checks = []
    try:
        settings = PosthocSettings.model_validate(need(cert, "settings"))
    except Exception as exc:  # noqa: BLE001 - any validation failure means the settings were edited
        raise VerificationError(f"certificate.json's settings are not valid post-hoc settings: {exc}", hint=REBOUND) from exc

    # 1. the two files the prior pays for
    arch_path, slc = out / ARCH_FILE, out / "model.slc"
    for path, key in ((arch_path, "architecture_sha256"), (slc, "compressed_sha256")):
        if not path.is_file():
            raise VerificationError(f"{path} is missing: the certificate pays for its bits.", hint=REBOUND)
        if file_sha256(path) != need(cert, key):
            raise VerificationError(f"{path} does not match the certificate's sha256 (corrupted or replaced).",
                                    hint=REBOUND)
    code_bits = 8 * slc.stat().st_size
    arch_bits = architecture_bits(arch_path.read_bytes())
    if code_bits != need(cert, "code_bits") or arch_bits != need(cert, "architecture_bits"):
        raise VerificationError(f"model.slc has {code_bits} bits and {ARCH_FILE} codes to {arch_bits}; the certificate "
                                f"charges {cert['code_bits']} and {cert['architecture_bits']}.", hint=REBOUND)
    checks.append(f"{ARCH_FILE} ({arch_bits} bits coded) and model.slc ({code_bits} bits): sha256 and sizes match")

    # 2. the data, byte for byte
    data = PreparedData.open(Path(need(cert, "data.dir")))
    data.verify_hashes()
    if data.meta.get("sha256") != need(cert, "data.sha256"):
        raise VerificationError(f"The prepared data in {data.path} is not the data the certificate was computed on.")
    checks.append(f"data {data.path}: train.bin / val.bin hashes match the certificate")

    # 3. the certified model: the architecture rebuilt, model.slc decoded into it entry by entry
    architecture = json.loads(arch_path.read_text())
    net = build_from_architecture(architecture)
    if tensor_list(net) != need(cert, "tensors"):
        raise VerificationError(f"The network {ARCH_FILE} builds has other tensors than the certificate lists.",
                                hint="Was it computed with another transformers version? " + REBOUND)
    coder = registry("coder").config(settings.bound.coder, settings.bound.coder_options).build()
    coder_checks = coder.check_run_data(data.record())  # recomputed: an LM prior that saw the data is refused
    read_into(net, slc, settings.group_size, coder)
    predictor = CausalLMPredictor(net)
    n_entries = len(entries(net, settings.group_size))
    model_type = architecture.get("model_type")
    checks.append(f"decoded {n_entries} entries of model.slc into the {len(cert['tensors'])} tensors of the "
                  f"rebuilt {model_type} network")

    # 4. the evidence: the file certified, the sample the settings draw
    block = int(need(cert, "block_size"))
    config = scoring_config(settings, block)
    evidence_path = out / "evidence.npz"
    if not evidence_path.is_file() or file_sha256(evidence_path) != need(cert, "evidence_sha256"):
        raise VerificationError(f"{evidence_path} is missing or changed since the certificate was written.",
                                hint=REBOUND)
    evidence = load_evidence(evidence_path)
    vocab = vocab_record(predictor, data, config)
    checks.append(draws_match(evidence, config, data, vocab["V"]))

    # 5. every field that follows from the files, the settings, the evidence and the ledger
    if not distinct_attempts(read_ledger(out)):
        raise VerificationError(f"{out / LEDGER} is missing or empty: the ledger of certification attempts fixes "
                                "the delta of every bound.", hint="Restore it; it is append-only.")
    attempts = summary(out, settings, hypothesis_sha256(slc, arch_path.read_bytes()))
    parameters = sum(p.numel() for p in net.parameters())
    expected = posthoc_fields(settings, block, arch_bits, code_bits, parameters, vocab, evidence, attempts)
    expected.update(entries=n_entries, data={"sha256": data.meta["sha256"], "tokenizer": data.meta["tokenizer"],
                                             "source": data.meta["source"]["spec"], "vocab_size": data.vocab_size,
                                             "eot_id": data.eot_id})
    expected["model"] = {"model_type": model_type, "parameters": parameters}
    if coder_checks is not None:
        expected["coder_checks"] = coder_checks
    refuse_differences(expected, cert, "what its files, settings and evidence give", tolerance,
                       partial=("searches", "model", "data"))  # where the weights and data were read: not derived
    head = expected["headline"]
    said = ("no headline" if head.get("value") is None else
            f"the headline ({head.get('name')} <= {head['value']:.4f})")
    checks.append(f"recomputed {len(expected['bounds'])} bounds (every key), {said} and {len(expected) - 2} other "
                  "fields: all match" + informational_note(
                      expected, cert, checked=("kind", "settings", "architecture_file", "architecture_sha256",
                                               "tensors", "block_size"), partial=("model", "data")))

    # 6. the evidence's scores are this model's
    seed = secrets.randbits(32) if seed is None else seed
    choice = choose(evidence, rescore_mode == "all", seed)
    t0 = time.perf_counter()
    rescore(predictor, data, config, evidence, choice)
    checks.append(f"re-scored {len(choice.blocks)} token blocks and {len(choice.documents)} documents "
                  + ("(all)" if choice.everything else f"chosen at random (seed {seed})")
                  + f" with the decoded model in {time.perf_counter() - t0:.1f} s: scores match the evidence")
    return checks

