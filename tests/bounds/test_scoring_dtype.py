"""`bound.dtype=bfloat16`: the certified predictor is the merged network computing in bfloat16 (docs/bounds.md
section 2). The certificate names it, the evidence is that predictor's (checked against a computation by hand),
verify re-scores in it and notices float32 scores, export stores its weights, the ledger pays for switching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from sublora.bounds.attempts import settings_sha256
from sublora.bounds.certify import certify, load_evidence
from sublora.bounds.verify import load_certified, verify
from sublora.core.config import BoundSettings
from sublora.core.errors import BoundError, VerificationError

BOUND = {"token_blocks": 24, "doc_samples": 4, "levels_grid": [], "qat_steps": 0, "dtype": "bfloat16"}


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, make_tiny_config):
    from sublora.core.train import train

    run = tmp_path_factory.mktemp("bf16") / "run"
    train(make_tiny_config(model={"impl": "lean"}, train={"max_steps": 4, "eval_interval": 4}, bound=BOUND), run)
    certify(run)
    return run


def _by_hand(run, dtype: torch.dtype, blocks: np.ndarray) -> np.ndarray:
    """Mean smoothed loss (bits) per block and alpha: the merged weights cast to ``dtype``, then float64 maths."""
    from sublora.bounds.inference import merged_network

    model, config, data = load_certified(run)
    V, T = model_vocab(run), config.model.block_size
    net = merged_network(model).to(dtype)
    x = torch.from_numpy(np.stack([np.asarray(data.train[b * T: (b + 1) * T + 1], dtype=np.int64) for b in blocks]))
    with torch.no_grad():
        logits = model.adapter.output(net(*model.adapter.arguments((x[:, :-1],), {}, None)[0]))
    p = torch.softmax(logits.double()[..., :V], -1).gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1).numpy()
    return np.stack([(-np.log2((1 - a) * p + a / V)).mean(1) for a in config.bound.alphas])  # (A, blocks)


def test_the_certificate_names_bfloat16_and_its_evidence_is_that_predictors(bf16_run):
    cert = json.loads((bf16_run / "certificate.json").read_text())
    assert cert["bound_settings"]["dtype"] == "bfloat16" and cert["scoring"]["dtype"] == "bfloat16"
    assert "bfloat16" in cert["scoring"]["forward"]
    tokens = load_evidence(bf16_run / "evidence.npz").tokens
    blocks = np.asarray(tokens.block_indices)[:8]
    bf16, fp32 = _by_hand(bf16_run, torch.bfloat16, blocks), _by_hand(bf16_run, torch.float32, blocks)
    np.testing.assert_allclose(tokens.loss[:, :8], bf16, rtol=1e-5, atol=1e-5)
    assert np.abs(tokens.loss[:, :8] - fp32).max() > 1e-4  # not the float32 predictor's scores


def test_verify_rescores_in_the_certified_arithmetic(bf16_run, monkeypatch):
    from sublora.bounds import inference
    from sublora.bounds.rescore import tolerance_statement

    assert any("re-scor" in check for check in verify(bf16_run, rescore_mode="all"))
    cert = json.loads((bf16_run / "certificate.json").read_text())
    statement = tolerance_statement(cert["scoring"], "cpu")
    assert "re-scored on cpu (bfloat16)" in statement and "same device" in statement
    assert "kind of machine that made it" in tolerance_statement({**cert["scoring"], "device": "cuda"}, "cpu")

    float32 = inference.predictor
    monkeypatch.setattr(inference, "predictor", lambda model, device="cpu", dtype="float32": float32(model, device))
    with pytest.raises(VerificationError, match="does not reproduce"):
        verify(bf16_run, rescore_mode="all")


def test_switching_the_arithmetic_after_a_certificate_is_a_paid_attempt(bf16_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bf16_run, run)
    with pytest.raises(BoundError, match="certified before with other bound settings"):
        certify(run, force=True, overrides={"bound.dtype": "float32"})
    cert = certify(run, force=True, overrides={"bound.dtype": "float32"}, charge=True)
    assert cert["searches"]["attempts"]["attempt"] == 2 and cert["scoring"]["dtype"] == "float32"


def test_the_default_arithmetic_keeps_the_settings_hash_of_ledgers_made_before_it():
    import hashlib

    from sublora.bounds.attempts import NO_EFFECT

    default = BoundSettings()
    before = {k: v for k, v in default.model_dump(mode="json", exclude=NO_EFFECT).items() if k != "dtype"}
    assert settings_sha256(default) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert settings_sha256(default.model_copy(update={"dtype": "bfloat16"})) != settings_sha256(default)


def test_export_stores_the_certified_bfloat16_weights(bf16_run, tmp_path):
    from sublora.bounds.export import export_hf
    from sublora.bounds.inference import merged_network
    from transformers import AutoModelForCausalLM

    export_hf(bf16_run, tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", local_files_only=True, dtype="auto")
    assert next(hf.parameters()).dtype == torch.bfloat16
    assert "computes in bfloat16" in (tmp_path / "hf" / "README.md").read_text()
    model, _, _ = load_certified(bf16_run)
    ours = merged_network(model).to(torch.bfloat16).state_dict()
    theirs = hf.state_dict()
    head = "lm_head.weight"
    assert torch.equal(theirs[head], next(v for k, v in ours.items() if k.endswith(head)))


@pytest.mark.parametrize("make", ["finetune", "posthoc"])
def test_certificates_that_score_in_float32_refuse_the_option(make):
    from sublora.bounds.posthoc.settings import PosthocSettings
    from sublora.core.errors import ConfigError
    from sublora.core.finetune.config import FinetuneConfig

    with pytest.raises(ConfigError, match="bound.dtype=bfloat16"):
        if make == "finetune":
            FinetuneConfig.from_dict({"bound": {"dtype": "bfloat16"}})
        else:
            PosthocSettings.from_overrides({"bound.dtype": "bfloat16"})


def test_bfloat16_scores_do_not_depend_on_batch_composition_or_threads(bf16_run):
    """verify re-scores a random part of the evidence in other batches than certify did: in bf16 as in float32,
    a block's scores must not depend on its batch (what verify's "same device" statement says)."""
    from sublora.bounds.evaluate import score_token_blocks
    from sublora.bounds.inference import predictor

    model, config, data = load_certified(bf16_run)
    tokens = load_evidence(bf16_run / "evidence.npz").tokens
    blocks = np.asarray(tokens.block_indices)
    predict = predictor(model, dtype="bfloat16")
    order = np.random.default_rng(0).permutation(len(blocks))
    threads = torch.get_num_threads()
    try:
        for batch_size, n_threads in ((5, 1), (len(blocks), 2)):
            torch.set_num_threads(n_threads)
            again = score_token_blocks(model, data.train, tokens.block_size, config.bound.alphas, None, seed=0,
                                       batch_size=batch_size, _indices=blocks[order], vocab=model_vocab(bf16_run),
                                       predict=predict, topk=tuple(sorted(tokens.topk_error)))
            np.testing.assert_array_equal(again.loss, tokens.loss[:, order])
            np.testing.assert_array_equal(again.xi2, tokens.xi2[:, order])
    finally:
        torch.set_num_threads(threads)


def test_bfloat16_document_scores_do_not_depend_on_their_batch(bf16_run):
    """Documents share padded batches of varying length: each one's bf16 scores stay those of the evidence."""
    from sublora.bounds.evaluate import score_documents
    from sublora.bounds.inference import predictor

    model, config, data = load_certified(bf16_run)
    docs = load_evidence(bf16_run / "evidence.npz").documents
    starts, ends = data.doc_bounds("train")
    predict = predictor(model, dtype="bfloat16")
    T = config.model.block_size
    for batch_size, order in ((1, slice(None, None, -1)), (3, slice(None))):
        chosen = np.asarray(docs.indices)[order]
        again = score_documents(model, data.train, starts, ends, data.eot_id, T, config.bound.doc_stride or T,
                                config.bound.alphas, tuple(sorted(docs.topk_error)), len(chosen), seed=0,
                                batch_size=batch_size, vocab=model_vocab(bf16_run), _indices=chosen, predict=predict)
        np.testing.assert_array_equal(again.bpd, np.asarray(docs.bpd)[:, order])


def model_vocab(run) -> int:
    return json.loads((run / "certificate.json").read_text())["vocab"]["V"]


@pytest.mark.slow  # a CLI subprocess
def test_show_names_the_bf16_predictor(bf16_run):
    shown = subprocess.run([sys.executable, "-m", "sublora.cli", "show", str(bf16_run)], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "predictor: the merged network computing in bfloat16" in shown.stdout
