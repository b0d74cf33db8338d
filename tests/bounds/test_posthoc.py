"""`sublora bound-model`: post-hoc bounds for a local Hugging Face causal LM (issue 13.2).

Tiny randomly initialized GPT-NeoX and LLaMA models (~130k parameters) are saved to disk with a byte-level
tokenizer; a sublora run exported with `sublora export` is bounded too. Every certificate must verify.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sublora.bounds.container import decode_compressed
from sublora.bounds.export import byte_tokenizer
from sublora.bounds.posthoc.certify import bound_model, build_from_architecture
from sublora.bounds.posthoc.compress import entries, read_into
from sublora.bounds.posthoc.data import open_data
from sublora.bounds.posthoc.settings import PosthocSettings
from sublora.bounds.verify import verify
from sublora.core.errors import CheckpointError, ConfigError, DataError, VerificationError
from sublora.core.registry import registry

SMALL = {"bound.token_blocks": 24, "bound.doc_samples": 4, "block_size": 32}


def _save(path, net, tokenizer=True):
    net.save_pretrained(path)
    if tokenizer:
        byte_tokenizer().save_pretrained(path)
    return path


def tiny_neox():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    return GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=257, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                            intermediate_size=256, max_position_embeddings=64, bos_token_id=256,
                                            eos_token_id=256))


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=257, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, intermediate_size=192, max_position_embeddings=64,
                                        bos_token_id=256, eos_token_id=256))


@pytest.fixture(scope="module")
def data_dir(text_corpus):
    return open_data(text_corpus, None).path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"gpt_neox": _save(root / "neox", tiny_neox()), "llama": _save(root / "llama", tiny_llama())}


@pytest.mark.parametrize("kind", ["gpt_neox", "llama"])
def test_a_tiny_model_is_bounded_and_verifies(kind, models, data_dir, tmp_path):
    out = tmp_path / "out"
    cert = bound_model(models[kind], data_dir, out, PosthocSettings.from_overrides(SMALL))
    assert cert["kind"] == "posthoc" and cert["model"]["model_type"] == kind
    assert cert["code_bits"] == 8 * (out / "model.slc").stat().st_size
    params = sum(p.numel() for p in build_from_architecture(json.loads((out / "architecture.json").read_text()))
                 .parameters())
    assert cert["parameters"] == params and 1.0 < cert["bits_per_parameter"] < 6.0  # 16 levels: at most 4 + codebooks
    assert cert["extra_breakdown"]["architecture"] > cert["architecture_bits"] > 0  # + its 2 log2 prefix term
    assert {b["name"] for b in cert["bounds"]} >= {"token_azuma_bpd", "token_freedman_bpd", "document_bpd"}
    assert abs(cert["losses_bits_per_token"]["quantized_train"] - cert["losses_bits_per_token"]["original_train"]) < 0.2
    checks = verify(out, "all")
    assert any("re-scored" in c and "scores match" in c for c in checks)


def test_the_file_is_sublora_format_and_decodes_to_the_quantized_weights(models, data_dir, tmp_path):
    """The streamed file is the container format (decode_compressed reads it) and every weight is on its codebook."""
    out = tmp_path / "out"
    settings = PosthocSettings.from_overrides({**SMALL, "group_size": 1024, "bound.quantizer": "kmeans",
                                               "bound.levels": 8})
    cert = bound_model(models["llama"], data_dir, out, settings)
    net = build_from_architecture(json.loads((out / "architecture.json").read_text()))
    todo = entries(net, 1024)
    assert cert["entries"] == len(todo) > len(cert["tensors"])  # per-group: several codebooks per matrix
    coder = registry("coder").config(settings.bound.coder).build()
    shapes = {f"{e.tensor}@{e.start}": e.length for e in todo}
    decoded = decode_compressed((out / "model.slc").read_bytes(), shapes, coder)
    assert max(q.codebook.size for k, q in decoded.items() if "norm" not in k) <= 8
    read_into(net, out / "model.slc", 1024, coder)
    params = dict(net.named_parameters())
    for e in todo:
        q = decoded[f"{e.tensor}@{e.start}"]
        np.testing.assert_array_equal(params[e.tensor].detach().view(-1)[e.start: e.start + e.length].numpy(), q.values)
    verify(out, "quick", seed=3)


def test_an_exported_sublora_run_is_bounded_and_verifies(exported_run, certified_run, tmp_path):
    """The export of item 3 is a plain GPT-2 with a byte tokenizer: bound-model takes it, on the run's own data."""
    run_data = json.loads((certified_run / "manifest.json").read_text())["data"]["dir"]
    out = tmp_path / "out"
    cert = bound_model(exported_run, run_data, out, PosthocSettings.from_overrides(SMALL))
    assert cert["model"]["model_type"] == "gpt2" and cert["tokenizer_check"]["checked"] is True
    assert cert["losses_bits_per_token"]["quantized_train"] < cert["losses_bits_per_token"]["original_train"] + 0.3
    verify(out, "quick", seed=0)


def test_verify_refuses_a_changed_model_file_and_a_missing_ledger(models, data_dir, tmp_path):
    out = tmp_path / "out"
    bound_model(models["gpt_neox"], data_dir, out, PosthocSettings.from_overrides(SMALL))
    ledger = (out / "bound_attempts.jsonl").read_bytes()
    (out / "bound_attempts.jsonl").unlink()
    with pytest.raises(VerificationError, match="missing or empty"):
        verify(out)
    (out / "bound_attempts.jsonl").write_bytes(ledger)
    data = bytearray((out / "model.slc").read_bytes())
    data[100] ^= 0xFF
    (out / "model.slc").write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="model.slc does not match"):
        verify(out)


def test_a_directory_that_is_not_a_causal_lm_is_refused(tmp_path, data_dir):
    with pytest.raises(CheckpointError, match="no config.json"):
        bound_model(tmp_path, data_dir, tmp_path / "out")
    from transformers import T5Config

    T5Config(d_model=16, num_layers=1, num_heads=2, d_ff=32, d_kv=8, vocab_size=257).save_pretrained(tmp_path / "t5")
    with pytest.raises(CheckpointError, match="is not a causal language model"):
        bound_model(tmp_path / "t5", data_dir, tmp_path / "out")


def test_a_tokenizer_mismatch_is_refused(tmp_path, data_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from sublora.bounds.export import _bytes_to_unicode

    shifted = {c: (b + 1) % 256 for b, c in _bytes_to_unicode().items()}  # another byte -> id map
    shifted["<|endoftext|>"] = 256
    tok = Tokenizer(models.BPE(vocab=shifted, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    path = _save(tmp_path / "m", tiny_neox(), tokenizer=False)
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(path)
    with pytest.raises(DataError, match="Tokenizer mismatch"):
        bound_model(path, data_dir, tmp_path / "out", PosthocSettings.from_overrides(SMALL))
    assert not (tmp_path / "out" / "certificate.json").exists()


def test_a_model_without_tokenizer_needs_trust(tmp_path, data_dir):
    path = _save(tmp_path / "m", tiny_neox(), tokenizer=False)
    with pytest.raises(DataError, match="no tokenizer"):
        bound_model(path, data_dir, tmp_path / "out", PosthocSettings.from_overrides(SMALL))
    cert = bound_model(path, data_dir, tmp_path / "out", PosthocSettings.from_overrides(SMALL), trust_tokenizer=True)
    assert cert["tokenizer_check"]["checked"] is False


def test_settings_refuse_a_search_and_unknown_components():
    with pytest.raises(ConfigError, match="levels_grid"):
        PosthocSettings.from_overrides({"bound.qat_steps": 5})
    with pytest.raises(ConfigError, match="quantizer"):
        PosthocSettings.from_overrides({"bound.quantizer": "kmaens"})


@pytest.mark.slow
def test_cli_bound_model_then_verify(models, data_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "sublora.cli.app"]
    out = tmp_path / "out"
    done = subprocess.run([*cli, "bound-model", str(models["llama"]), "--data", str(data_dir), "--out", str(out),
                           "--bound.token_blocks=16", "--bound.doc_samples=3", "--posthoc.block_size=32",
                           "--format", "json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bits_per_parameter"] > 0
    done = subprocess.run([*cli, "verify", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "certificate verified" in done.stdout, done.stderr
    bad = subprocess.run([*cli, "bound-model", str(tmp_path), "--data", str(data_dir), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "no config.json" in bad.stderr and "Traceback" not in bad.stderr


def test_another_model_into_the_same_out_is_a_paid_attempt(models, data_dir, tmp_path):
    """Same settings, another model: keeping the better of the two certificates is a choice after seeing the
    first, so the ledger counts the model too (its model.slc and architecture)."""
    from sublora.core.errors import BoundError

    out = tmp_path / "out"
    first = bound_model(models["gpt_neox"], data_dir, out, PosthocSettings.from_overrides(SMALL))
    assert first["searches"]["attempts"]["attempt"] == 1
    with pytest.raises(BoundError, match="another model"):
        bound_model(models["llama"], data_dir, out, PosthocSettings.from_overrides(SMALL), force=True)
    second = bound_model(models["llama"], data_dir, out, PosthocSettings.from_overrides(SMALL), force=True, charge=True)
    assert second["searches"]["attempts"]["attempt"] == 2
    assert all(b["inputs"]["delta"] == pytest.approx(0.05 / 6) for b in second["bounds"])
    verify(out, "quick", seed=1)


def test_verify_refuses_edited_descriptive_fields_it_can_rederive(models, data_dir, tmp_path):
    """The entry count, model type, parameter count and data record are recomputed; the rest is listed."""
    import shutil

    out = tmp_path / "out"
    bound_model(models["gpt_neox"], data_dir, out, PosthocSettings.from_overrides(SMALL))
    checks = verify(out, "quick", seed=0)
    assert any("informational, not re-derived: " in c and "tokenizer_check" in c and "model.dir" in c for c in checks)
    for path, value in ((("entries",), 999), (("model", "model_type"), "llama"), (("model", "parameters"), 1),
                        (("data", "vocab_size"), 3), (("data", "eot_id"), 7)):
        copy = tmp_path / "_".join(path)
        shutil.copytree(out, copy)
        cert = json.loads((copy / "certificate.json").read_text())
        target = cert
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (copy / "certificate.json").write_text(json.dumps(cert))
        with pytest.raises(VerificationError, match=".".join(path)):
            verify(copy, "quick", seed=0)


def test_the_coders_independence_check_runs_in_certify_and_verify(models, data_dir, tmp_path, monkeypatch):
    """An lm coder's prior must not have seen the data: bound-model and verify ask every coder, as bound does."""
    from sublora.core.coder import Coder
    from sublora.core.errors import DataError

    out = tmp_path / "out"
    bound_model(models["gpt_neox"], data_dir, out, PosthocSettings.from_overrides(SMALL))
    seen = []

    def refuse(self, run_data):
        seen.append(run_data)
        raise DataError("the prior saw this data")

    monkeypatch.setattr(Coder, "check_run_data", refuse)
    with pytest.raises(DataError, match="the prior saw this data"):
        verify(out, "quick", seed=0)
    with pytest.raises(DataError, match="the prior saw this data"):
        bound_model(models["gpt_neox"], data_dir, tmp_path / "out2", PosthocSettings.from_overrides(SMALL))
    assert len(seen) == 2 and all(r["sha256"] for r in seen)
    assert not (tmp_path / "out2" / "certificate.json").exists()
