"""Text generation from a trained subspace model (as the reference's sample.py): top-k / temperature sampling."""

from __future__ import annotations

import torch


@torch.inference_mode()
def generate(model, ids: list[int], max_new_tokens: int, block_size: int, temperature: float = 0.8,
             top_k: int | None = 200, seed: int = 0) -> list[int]:
    """Continue ``ids`` by ``max_new_tokens`` tokens; the context is cropped to the last ``block_size``.

    temperature 0 picks the most likely token (greedy); otherwise logits / temperature, kept to the
    top_k most likely, sampled with a seeded CPU generator (same seed, same text).
    """
    if not ids:
        raise ValueError("the prompt must hold at least one token")
    if max_new_tokens < 0 or temperature < 0 or (top_k is not None and top_k < 1):
        raise ValueError("need max_new_tokens >= 0, temperature >= 0 and top_k >= 1")
    model.eval()
    theta = model.flat_params()
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor([ids], dtype=torch.long)  # (1, T)
    for _ in range(max_new_tokens):
        logits = model(x[:, -block_size:], theta)[0, -1].float()  # (V,)
        if temperature == 0:
            nxt = int(torch.argmax(logits))
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.numel():
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen))
        x = torch.cat([x, torch.tensor([[nxt]])], dim=1)
    return x[0].tolist()
