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


def as_hf(model, config: RunConfig, vocab_size: int, eot_id: int):
    """``model`` (a SubspaceModel of ``config``) over transformers' GPT-2 (``model.impl=hf``), for what needs
    transformers' API (save_pretrained, hidden states, peft). Every implementation keeps hf's tensor names,
    so the state (w, theta0, the network) loads as it is; a model already on hf is returned unchanged."""
    if config.model.impl == "hf":
        return model
    hf_config = config.model_copy(update={"model": config.model.model_copy(update={"impl": "hf"})})
    hf = build_model(hf_config, vocab_size, eot_id)
    hf.load_state_dict(model.state_dict(), strict=True)
    return hf.train(model.training)
