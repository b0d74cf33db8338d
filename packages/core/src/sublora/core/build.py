"""Build the SubLoRA model a config describes (the same way in every process)."""

from __future__ import annotations

from sublora.core.config import RunConfig
from sublora.core.registry import registry


def build_model(config: RunConfig, vocab_size: int, eot_id: int):
    """GPT-2 + LoRA (by ``model.impl``) + projector, with theta0 and P rebuilt from the config's seeds."""
    from sublora.core.subspace import SubspaceModel

    projector_config = registry("projector").config(config.sublora.projector, config.sublora.projector_options)
    net, adapter = registry("model").config(config.model.impl).build(config.model, config.lora, vocab_size, eot_id)
    return SubspaceModel(net, projector_config.build, config.sublora.intrinsic_dim, config.sublora.seed,
                         adapter=adapter)
