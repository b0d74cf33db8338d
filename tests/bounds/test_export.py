"""`sublora export RUN --hf DIR`: the certified model as plain Hugging Face weights (issue 13.3).

The exported model must be the certified one: its logits equal sublora's scorer's (the decoded model.slc in
the rebuilt network) and its smoothed per-token losses reproduce the certificate's evidence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sublora.bounds.certify import load_evidence
from sublora.bounds.evaluate import score_token_blocks
from sublora.bounds.export import export_hf
from sublora.bounds.posthoc.predictor import CausalLMPredictor
from sublora.bounds.verify import load_certified
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import RunDirError


def _hf(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()


def test_exported_logits_and_losses_are_the_certified_models(certified_run, exported_run):
    assert_exported_is_certified(certified_run, exported_run)


def test_a_lean_run_exports_as_transformers_gpt2(make_tiny_config, tmp_path):
    """model.impl=lean (the main job's) has no save_pretrained: export rebuilds the run over transformers' GPT-2."""
    from sublora.bounds.certify import certify
    from sublora.core.train import train

    run = tmp_path / "run"
    train(make_tiny_config(model={"impl": "lean"}, train={"max_steps": 4, "eval_interval": 4},
                           bound={"token_blocks": 16, "doc_samples": 4, "levels_grid": [], "qat_steps": 0}), run)
    certify(run)
    export_hf(run, tmp_path / "hf")
    assert_exported_is_certified(run, tmp_path / "hf")


def assert_exported_is_certified(certified_run, exported_run):
    model, config, data = load_certified(certified_run)
    hf = _hf(exported_run)
    block = config.model.block_size
    x = torch.from_numpy(np.asarray(data.train[: 4 * block + 1], dtype=np.int64))
    inputs = torch.stack([x[i * block: (i + 1) * block] for i in range(4)])  # (4, T)
    with torch.no_grad():
        ours, theirs = model(inputs), hf(inputs).logits
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() < 1e-4
    targets = torch.stack([x[i * block + 1: (i + 1) * block + 1] for i in range(4)])
    ce = lambda logits: torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                                          reduction="none")
    assert torch.allclose(ce(ours), ce(theirs), atol=1e-5)

    cert = json.loads((certified_run / "certificate.json").read_text())
    evidence = load_evidence(certified_run / "evidence.npz")
    blocks = np.asarray(evidence.tokens.block_indices)[:8]
    again = score_token_blocks(CausalLMPredictor(hf), data.train, block, evidence.alphas, None, seed=0,
                               _indices=blocks, vocab=cert["vocab"]["V"])
    np.testing.assert_allclose(again.loss, evidence.tokens.loss[:, :8], atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(again.xi2, evidence.tokens.xi2[:, :8], atol=1e-4, rtol=1e-5)


def test_the_tied_head_is_untied_and_the_embedding_keeps_its_base_value(certified_run, exported_run):
    """A head LoRA merged into a tied head would move the input embedding too: the export unties them."""
    model, _, _ = load_certified(certified_run)
    hf = _hf(exported_run)
    assert hf.config.tie_word_embeddings is False
    base = model.net.get_base_model()
    assert torch.equal(hf.get_input_embeddings().weight, base.get_input_embeddings().weight)
    assert not torch.equal(hf.get_output_embeddings().weight, hf.get_input_embeddings().weight)


def test_the_byte_tokenizer_reproduces_sublora_token_ids(exported_run):
    from sublora.core.registry import registry
    from transformers import AutoTokenizer

    ours = registry("tokenizer").config("bytes").build()
    theirs = AutoTokenizer.from_pretrained(exported_run, local_files_only=True)
    text = "def f(x):\n\treturn x ** 2  # héllo wörld, 日本 <|endoftext|> done"
    assert theirs(text, split_special_tokens=True)["input_ids"] == ours.encode(text).tolist()
    plain = "héllo\n  wörld"
    assert theirs(plain)["input_ids"] == ours.encode(plain).tolist()
    assert theirs.eos_token_id == ours.eot_id == 256
    assert theirs.decode(ours.encode(plain).tolist()) == plain
    info = json.loads((exported_run / "sublora_tokenizer.json").read_text())
    assert info["spec"] == "bytes" and info["eot_id"] == 256 and info["hf_tokenizer"] is True


def test_the_model_card_carries_the_headline_and_the_hashes(certified_run, exported_run):
    card = (exported_run / "README.md").read_text()
    cert = json.loads((certified_run / "certificate.json").read_text())
    manifest = json.loads((certified_run / "manifest.json").read_text())
    assert file_sha256(certified_run / "certificate.json") in card
    assert manifest["config_sha256"] in card
    assert cert["compressed_sha256"] in card
    head = cert["headline"]
    assert (f"{head['value']:.4f}" if head.get("value") is not None else "no headline") in card
    assert file_sha256(exported_run / "certificate.json") == file_sha256(certified_run / "certificate.json")


def test_export_refuses_a_run_without_certificate_and_a_non_empty_target(tmp_path, certified_run):
    with pytest.raises(RunDirError, match="not a sublora run directory"):
        export_hf(tmp_path, tmp_path / "out")
    (tmp_path / "trained").mkdir()  # a run (its manifest) that was never bounded
    (tmp_path / "trained" / "manifest.json").write_bytes((certified_run / "manifest.json").read_bytes())
    with pytest.raises(RunDirError, match="no certificate"):
        export_hf(tmp_path / "trained", tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(RunDirError, match="not empty"):
        export_hf(certified_run, tmp_path / "full")


@pytest.mark.slow
def test_cli_export(certified_run, tmp_path):
    out = tmp_path / "hf"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "sublora.cli.app", "export", str(certified_run), "--hf", str(out),
                           "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["certificate_sha256"] == file_sha256(certified_run / "certificate.json")
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()


def test_a_pretrained_base_with_more_outputs_exports_the_tokenizer_restricted_predictor(make_tiny_config, tmp_path):
    """bound.vocab=tokenizer certifies the softmax over the tokenizer's 257 ids of a 300-output model: the export
    keeps those rows, so its own softmax is the certified predictor (and the activation override survives)."""
    from sublora.bounds.certify import certify
    from sublora.core.train import train
    from transformers import GPT2Config, GPT2LMHeadModel

    base = tmp_path / "gpt2-300"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2)).save_pretrained(base)
    run = tmp_path / "run"
    train(make_tiny_config(model={"pretrained": str(base)}, train={"max_steps": 3, "eval_interval": 3},
                           bound={"token_blocks": 16, "doc_samples": 3, "levels_grid": [], "qat_steps": 0,
                                  "vocab": "tokenizer"}), run)
    certify(run)
    out = tmp_path / "hf"
    export_hf(run, out)
    model, config, data = load_certified(run)
    hf = _hf(out)
    assert hf.config.vocab_size == 257 and hf.get_output_embeddings().weight.shape[0] == 257
    x = torch.from_numpy(np.asarray(data.train[: config.model.block_size], dtype=np.int64))[None]
    with torch.no_grad():
        assert (model(x)[..., :257] - hf(x).logits).abs().max().item() < 1e-4
    evidence = load_evidence(run / "evidence.npz")
    again = score_token_blocks(CausalLMPredictor(hf), data.train, config.model.block_size, evidence.alphas, None,
                               seed=0, _indices=np.asarray(evidence.tokens.block_indices)[:4], vocab=257)
    np.testing.assert_allclose(again.loss, evidence.tokens.loss[:, :4], atol=1e-4, rtol=1e-5)


def test_export_refuses_an_edited_certificate_unless_told_not_to_verify(certified_run, tmp_path):
    """The card repeats the certificate's headline: an edited number must not reach it unchecked."""
    import shutil

    from sublora.core.errors import VerificationError

    run = tmp_path / "run"
    shutil.copytree(certified_run, run)
    cert = json.loads((run / "certificate.json").read_text())
    assert cert["headline"].get("value") is not None
    cert["headline"]["value"] = round(cert["headline"]["value"] - 1.0, 4)
    (run / "certificate.json").write_text(json.dumps(cert))
    with pytest.raises(VerificationError):
        export_hf(run, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
    summary = export_hf(run, tmp_path / "hf2", verify=False)
    assert summary["verified"] is False and "NOT verified" in (tmp_path / "hf2" / "README.md").read_text()
