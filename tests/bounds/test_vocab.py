"""One V everywhere: the predictor's vocabulary comes from the model's output layer (docs/bounds.md section 2).

A pretrained model with more outputs than the tokenizer has ids (GPT-2's 50,257 on byte data) used to be
smoothed with the model's V by the scorer but bounded with the tokenizer's V by the estimators: a range
Delta too small for the losses it was paying for.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sublora.bounds.certify import certify
from sublora.bounds.evaluate import predictor_vocab, score_token_blocks
from sublora.bounds.smoothing import delta_range, loss_range
from sublora.core.errors import BoundError
from sublora.core.train import load_trained, train

OUTPUTS, TOKENIZER = 300, 257  # a pretrained head larger than the byte tokenizer's 256 bytes + end-of-text


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory, make_tiny_config):
    """A run on byte data whose pretrained base model has 300 outputs."""
    from transformers import GPT2Config, GPT2LMHeadModel

    base = tmp_path_factory.mktemp("gpt2-wide")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=OUTPUTS, n_positions=64, n_embd=32, n_layer=2, n_head=2)).save_pretrained(base)
    run = tmp_path_factory.mktemp("wide") / "run"
    config = make_tiny_config(model={"pretrained": str(base)}, train={"max_steps": 2, "eval_interval": 2,
                                                                       "checkpoint_interval": 2},
                              bound={"levels": 5, "qat_steps": 0, "token_blocks": 16})
    train(config, run)
    return run


def test_the_bound_uses_the_models_outputs_not_the_tokenizers(wide_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(wide_run, run)
    cert = certify(run)
    assert cert["vocab"] == {**cert["vocab"], "V": OUTPUTS, "rule": "model", "model_outputs": OUTPUTS,
                             "tokenizer": TOKENIZER}
    assert cert["vocab_size"] == OUTPUTS and "never emits" in cert["vocab"]["note"]
    for b in cert["bounds"]:
        if b["inputs"].get("alpha") is not None:
            assert b["inputs"]["vocab_size"] == OUTPUTS
            if b["estimator"] == "azuma":
                assert b["inputs"]["Delta"] == pytest.approx(delta_range(b["inputs"]["alpha"], OUTPUTS))
    with np.load(run / "evidence.npz") as z:  # every per-token loss inside the range of the V it is bounded with
        for a, alpha in enumerate(z["alphas"]):
            lo, hi = loss_range(float(alpha), OUTPUTS)
            assert lo - 1e-3 <= z["token_loss_extremes"][a, 0] <= z["token_loss_extremes"][a, 1] <= hi + 1e-3


def test_restricting_to_the_tokenizer_renormalises_over_its_ids(wide_run):
    model, config, data = load_trained(wide_run)
    assert predictor_vocab(model, data.vocab_size, "model") == OUTPUTS
    assert predictor_vocab(model, data.vocab_size, "tokenizer") == TOKENIZER
    alphas, T = (0.05,), config.model.block_size
    got = score_token_blocks(model, data.train, T, alphas, None, seed=0, _indices=np.array([0, 3]), vocab=TOKENIZER)
    # by hand: softmax over the first 257 logits, smoothed with alpha / 257
    window = torch.from_numpy(np.asarray(data.train[np.array([0, 3])[:, None] * T + np.arange(T + 1)], dtype=np.int64))
    with torch.no_grad():
        logits = model(window[:, :-1], model.flat_params()).float()[..., :TOKENIZER]
    p = torch.softmax(logits, -1).gather(-1, window[:, 1:, None])[..., 0]
    x = -torch.log2(0.95 * p + 0.05 / TOKENIZER)
    assert np.allclose(got.loss[0], x.mean(-1).numpy(), atol=1e-5)
    assert got.loss_extremes[0, 1] <= math.log2(TOKENIZER / 0.05) + 1e-4


def test_a_model_smaller_than_the_tokenizer_is_refused(wide_run):
    model, _, _ = load_trained(wide_run)
    with pytest.raises(BoundError, match="300 outputs but the tokenizer emits 400"):
        predictor_vocab(model, 400)
