"""The tiny random-init model the scoring tests share (one layer, d = 20, w drawn from seed 0)."""

from __future__ import annotations

import torch

from sublora.core.build import build_model
from sublora.core.config import RunConfig

V, EOT, T = 257, 256, 16


def tiny_scoring_model():
    cfg = RunConfig.from_dict({"model": {"preset": "tiny", "n_embd": 32, "n_head": 2, "n_layer": 1, "block_size": T},
                               "sublora": {"intrinsic_dim": 20}})
    m = build_model(cfg, V, EOT)
    with torch.no_grad():
        m.w.normal_(generator=torch.Generator().manual_seed(0))
    return m.eval()
