"""A local pretrained GPT-2 directory loads (no hub access) and trains in the subspace."""

from __future__ import annotations

import pytest
import torch

from sublora.core.build import build_model
from sublora.core.errors import CheckpointError, ConfigError


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("gpt2-local")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2))
    model.save_pretrained(path)
    return path, model


def test_local_pretrained_model_is_the_base(tiny_config, pretrained_dir):
    path, reference = pretrained_dir
    cfg = tiny_config.model_copy(update={"model": tiny_config.model.model_copy(update={"pretrained": path})})
    m = build_model(cfg, vocab_size=257, eot_id=256).eval()
    x = torch.randint(0, 257, (1, 16))
    reference.eval()
    with torch.no_grad():  # w = 0 and LoRA B = 0: the subspace model is exactly the pretrained one
        assert torch.allclose(m(x), reference(x).logits, atol=1e-5)
    m.loss(x, x).backward()
    assert m.w.grad is not None


def test_bad_pretrained_dirs(tiny_config, pretrained_dir, tmp_path):
    cfg = tiny_config.model_copy(update={"model": tiny_config.model.model_copy(update={"pretrained": tmp_path})})
    with pytest.raises(CheckpointError, match="not a local GPT-2 directory"):
        build_model(cfg, 257, 256)
    path, _ = pretrained_dir
    cfg = tiny_config.model_copy(update={"model": tiny_config.model.model_copy(update={"pretrained": path})})
    with pytest.raises(ConfigError, match="vocabulary"):
        build_model(cfg, 50257, 50256)
