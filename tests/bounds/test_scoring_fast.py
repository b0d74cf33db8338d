"""The scoring forward: the certified weights merged once into a plain network give the same losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sublora.bounds.evaluate import score_documents, score_token_blocks
from sublora.bounds.inference import merged_network, predictor, unmerged_predictor
from sublora.core.build import build_model
from sublora.core.config import RunConfig

V, EOT, T = 257, 256, 16
ALPHAS = (0.01, 0.5)


def _model(**lora):
    cfg = RunConfig.from_dict({"model": {"preset": "tiny", "n_embd": 32, "n_head": 2, "n_layer": 2, "block_size": T},
                               "lora": lora, "sublora": {"intrinsic_dim": 40}})
    m = build_model(cfg, V, EOT)
    with torch.no_grad():
        m.w.normal_(generator=torch.Generator().manual_seed(0))
        m.w.mul_(0.3)
    return m.eval()


@pytest.mark.parametrize("lora", [{}, {"attention_output": True, "mlp": True}, {"head": False}])
def test_merged_logits_are_the_training_forwards(lora):
    model = _model(**lora)
    embedding = model.net.get_base_model().transformer.wte.weight.clone()
    x = torch.from_numpy(np.random.default_rng(0).integers(0, V, size=(3, T)))
    with torch.inference_mode():
        merged, reference = predictor(model)(x), unmerged_predictor(model)(x)
    assert torch.allclose(merged, reference, atol=2e-5, rtol=1e-5), (merged - reference).abs().max()
    assert not torch.equal(merged, model.net(x).logits)  # w != 0: the merge changed the function from theta0's
    # the model itself is untouched (the head's LoRA merged into a copy, the tied embedding kept)
    assert torch.equal(model.net.get_base_model().transformer.wte.weight, embedding)


def test_merged_network_has_no_adapters_and_an_untied_head():
    net = merged_network(_model())
    assert not any("lora" in n for n, _ in net.named_parameters())
    assert net.lm_head.weight.data_ptr() != net.transformer.wte.weight.data_ptr()


def test_evidence_of_the_fast_path_matches_todays():
    """Per-block losses, xi^2, top-k and the loss range of the merged path equal the unmerged one's."""
    model = _model()
    tokens = np.random.default_rng(1).integers(0, V, size=20 * T + 1)
    fast = score_token_blocks(model, tokens, T, ALPHAS, None, seed=0, batch_size=4, topk=(1, 5))
    slow = score_token_blocks(model, tokens, T, ALPHAS, None, seed=0, batch_size=4, topk=(1, 5),
                              predict=unmerged_predictor(model))
    for name in ("loss", "xi2", "loss_extremes"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), atol=1e-5, rtol=1e-6)
    for k in (1, 5):
        np.testing.assert_allclose(fast.topk_error[k], slow.topk_error[k], atol=1 / T / 2)
    ends = np.cumsum([40, 7, 90, 16])
    docs = tokens[: ends[-1]].copy()
    docs[ends - 1] = EOT
    a = score_documents(model, docs, ends - np.diff(ends, prepend=0), ends, EOT, T, 8, ALPHAS, (1,), 6, seed=2)
    b = score_documents(model, docs, ends - np.diff(ends, prepend=0), ends, EOT, T, 8, ALPHAS, (1,), 6, seed=2,
                        predict=unmerged_predictor(model))
    np.testing.assert_allclose(a.bpd, b.bpd, atol=1e-5, rtol=1e-6)


def test_token_blocks_all_is_every_block():
    cfg = RunConfig.from_dict({"bound": {"token_blocks": "all"}})
    assert cfg.bound.token_blocks is None  # the resolved config spells it null: every block once
    model = _model()
    tokens = np.random.default_rng(3).integers(0, V, size=9 * T + 5)
    ev = score_token_blocks(model, tokens, T, ALPHAS, cfg.bound.token_blocks, seed=0, batch_size=4)
    assert not ev.sampled and list(ev.block_indices) == list(range(9)) and ev.n == 9 * T


@pytest.mark.slow
def test_scoring_many_blocks_keeps_resident_memory_bounded(fresh_python):
    """Scoring every block of a large stream must not hold ~185 KB per block (glibc heap fragmentation, which
    took the main job's all-block scoring past 17 GB): 3,072 blocks of 128 tokens in a fresh process."""
    code = (
        "import numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "from sublora.bounds.evaluate import score_token_blocks\n"
        "from sublora.core.build import build_model\n"
        "from sublora.core.config import RunConfig\n"
        "cfg = RunConfig.from_dict({'model': {'preset': 'tiny', 'n_embd': 32, 'n_head': 2, 'n_layer': 1, 'block_size': 128,\n"
        "                                     'impl': 'lean'}, 'sublora': {'intrinsic_dim': 40}})\n"
        "model = build_model(cfg, 257, 256).eval()\n"
        "tokens = np.random.default_rng(0).integers(0, 257, size=128 * 3072 + 1).astype(np.uint16)\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "score_token_blocks(model, tokens, 128, (0.01, 0.1, 0.5), 64, seed=0, topk=(1, 10))  # warm-up\n"
        "before = rss()\n"
        "score_token_blocks(model, tokens, 128, (0.01, 0.1, 0.5), None, seed=0, topk=(1, 10))\n"
        "print((rss() - before) / 2**20)\n"
    )
    grown_mb = fresh_python(code, timeout=300)
    assert grown_mb < 150, f"resident memory grew by {grown_mb:.0f} MB over 3,072 scored blocks"
