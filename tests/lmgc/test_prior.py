"""Priors: a sublora run and a local Hugging Face directory load the same way, say what data they saw,
and have an identity that changes with anything that changes the probabilities."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lmgc_priors import hf_prior_dir, text_prior
from sublora.lmgc.errors import PriorError
from sublora.lmgc.prior import load_prior


def test_run_prior_describes_its_data_and_has_a_stable_identity():
    prior = load_prior(text_prior())
    again = load_prior(f"{text_prior()}:best")
    assert prior.kind == "sublora-run" and prior.spec.endswith(":best") and prior.identity == again.identity
    assert prior.vocab_size == 257 and prior.bos_id == 256 and prior.max_context == 32
    # text of unknown content: zero-shot unless it held numbers (a folder made for LM-GC says so)
    assert "local text under" in prior.describe() and "unless that data held serialized numbers" in prior.describe()
    assert prior.saw["zero_shot"] is None
    assert load_prior(text_prior(), dtype="float64").identity != prior.identity
    with pytest.raises(PriorError, match="Unknown dtype"):
        load_prior(text_prior(), dtype="float16")


def test_a_lean_run_is_a_prior_with_the_runs_own_probabilities():
    """model.impl=lean (the main job's): the prior runs the same tensors in transformers' GPT-2."""
    import torch

    from sublora.core.train import load_trained
    from sublora.lmgc.stepper import GPT2Stepper

    prior = load_prior(text_prior("lean"))
    model, _, _ = load_trained(text_prior("lean"))
    ids = torch.tensor([[256, 100, 101, 102, 58, 10]])
    with torch.no_grad():
        assert torch.allclose(prior.net(input_ids=ids, use_cache=False).logits, model(ids), atol=1e-5)
    assert GPT2Stepper(prior, 32).H == 2 and prior.identity != load_prior(text_prior()).identity


def test_hf_directory_prior_round_trips_and_reads_its_model_card(tmp_path):
    from sublora.lmgc.codec import CodecSettings
    from sublora.lmgc.files import compress_file, decompress_file

    prior = load_prior(hf_prior_dir())
    assert prior.kind == "hf" and prior.max_context == 64 and prior.vocab_size == len(prior.tokenizer.inner)
    assert "random-hex-floats" in prior.describe()
    raw = (np.random.default_rng(5).standard_normal(40) * 1e-2).astype("<f4").tobytes()
    (tmp_path / "g.f32").write_bytes(raw)
    result = compress_file(tmp_path / "g.f32", tmp_path / "g.lmgc", prior, CodecSettings(window=64))
    assert result["tokens"] < 1151  # BPE merges hex digits: fewer tokens than characters
    decompress_file(tmp_path / "g.lmgc", tmp_path / "g.out")  # the prior named in the header
    assert (tmp_path / "g.out").read_bytes() == raw


def test_hf_identity_covers_the_tokenizer(tmp_path):
    copy = tmp_path / "hf"
    shutil.copytree(hf_prior_dir(), copy)
    before = load_prior(copy).identity
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(copy, local_files_only=True)
    tokenizer.add_tokens(["zz"])  # another tokenizer, the same weights
    tokenizer.save_pretrained(copy)
    assert load_prior(copy).identity != before


def test_what_is_not_a_prior_says_so(tmp_path):
    with pytest.raises(PriorError, match="not a directory"):
        load_prior(tmp_path / "missing")
    with pytest.raises(PriorError, match="neither a sublora run"):
        load_prior(tmp_path)
    with pytest.raises(PriorError, match="not a sublora run directory"):
        load_prior(f"{hf_prior_dir()}:last")
