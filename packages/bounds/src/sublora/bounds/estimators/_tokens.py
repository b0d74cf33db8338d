"""Checks on token-level evidence shared by the martingale bounds."""

from __future__ import annotations

import numpy as np

from sublora.bounds.estimators._common import check_count, per_alpha
from sublora.core.bound import Evidence, TokenEvidence
from sublora.core.errors import BoundError


def token_arrays(evidence: Evidence) -> tuple[TokenEvidence, np.ndarray, np.ndarray]:
    """Validated (tokens, loss, xi2); loss and xi2 have shape (len(alphas), blocks)."""
    tokens = evidence.tokens
    assert tokens is not None
    check_count(int(tokens.n), "N", "training tokens")
    if tokens.n % tokens.block_size:
        raise BoundError(f"Token evidence claims n = {tokens.n} training tokens, not a whole number of blocks of "
                         f"{tokens.block_size}: the martingale runs over whole blocks only (n = blocks x block_size).")
    check_count(int(tokens.blocks), "n", "evaluated blocks")
    if not tokens.sampled and tokens.blocks != tokens.total_blocks:
        raise BoundError(
            f"Token evidence claims every block was evaluated but holds {tokens.blocks} of "
            f"{tokens.total_blocks} blocks; mark it sampled or evaluate all blocks."
        )
    loss = per_alpha(tokens.loss, evidence.alphas, tokens.blocks, "tokens.loss")
    xi2 = per_alpha(tokens.xi2, evidence.alphas, tokens.blocks, "tokens.xi2")
    return tokens, loss, xi2


def token_inputs(tokens: TokenEvidence, delta: float) -> dict:
    """N = training tokens (the martingale length, the n of the formulas); n = evaluated tokens."""
    return {
        "N": int(tokens.n),
        "n": int(tokens.blocks * tokens.block_size),
        "m": int(tokens.blocks),
        "blocks": int(tokens.blocks),
        "total_blocks": int(tokens.total_blocks),
        "block_size": int(tokens.block_size),
        "sampled": bool(tokens.sampled),
        "delta": float(delta),
    }
