"""Named run presets: partial configs that `sublora run --preset NAME` starts from.

``default`` is the main job (embedded corpus, byte tokenizer, a small GPT-2,
rdkron projector, sublora's lean GPT-2 implementation), sized to finish in minutes on a
2-core CPU (the library's own default implementation stays ``hf``). ``smoke`` runs
every stage on a sliver of the corpus in seconds (tests use it), with the same lean model.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "default": {"model": {"impl": "lean"}},  # 1.07-1.19x per step, same numerics (docs/results.md)
    "smoke": {
        "data": {"max_documents": 40},
        "model": {"preset": "tiny", "block_size": 64, "impl": "lean"},  # as the main job; no transformers import
        "sublora": {"intrinsic_dim": 200},
        "train": {"max_steps": 30, "batch_size": 4, "warmup_steps": 5, "eval_interval": 15,
                  "eval_batches": 2, "log_interval": 5, "checkpoint_interval": 15},
        "bound": {"doc_samples": 6, "token_blocks": 64},
    },
}


def preset(name: str) -> dict[str, Any]:
    from sublora.core.errors import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"Unknown preset '{name}'.", hint=f"Available presets: {', '.join(PRESETS)}.")
    import copy

    return copy.deepcopy(PRESETS[name])
