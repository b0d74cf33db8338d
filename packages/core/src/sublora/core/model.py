"""GPT-2 from transformers with LoRA adapters from peft.

The base weights are either a seeded random init (pretraining from scratch,
the SubLoRA setting) or a local pretrained directory; either way they are
frozen and rebuilt from the config, never stored in a run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from sublora.core.config import LoraConfig, ModelConfig
from sublora.core.errors import CheckpointError, ConfigError

# Module-name patterns (matched against full names) for each LoRA target group.
LORA_TARGETS = {
    "attention": r"attn\.c_attn",
    "attention_output": r"attn\.c_proj",
    "mlp": r"mlp\.(?:c_fc|c_proj)",
    "head": r"lm_head",
}


def build_base_model(config: ModelConfig, vocab_size: int, eot_id: int):
    """A GPT2LMHeadModel: random (seeded by ``config.init_seed``) or loaded from a local directory."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    from sublora.core.gpt2_init import base_state, load_drawn

    hf_logging.set_verbosity_error()
    if config.pretrained is not None:
        path = Path(config.pretrained)
        if not (path / "config.json").is_file():
            raise CheckpointError(
                f"model.pretrained={path} is not a local GPT-2 directory (no config.json).",
                hint="Point it at a directory written by save_pretrained(), or drop the option to train from scratch.",
            )
        model = GPT2LMHeadModel.from_pretrained(path, local_files_only=True, **_fused_gelu(path))
        if model.config.vocab_size < vocab_size:
            raise ConfigError(
                f"The pretrained model's vocabulary ({model.config.vocab_size}) is smaller than the "
                f"tokenizer's ({vocab_size}).",
                hint="Use the tokenizer the model was trained with (e.g. --data.tokenizer=tiktoken:gpt2).",
            )
        if model.config.n_positions < config.block_size:
            raise ConfigError(f"model.block_size={config.block_size} exceeds the pretrained context "
                              f"({model.config.n_positions}).")
        return model
    shape = config.shape()
    gpt_config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=config.block_size,
        n_embd=shape["n_embd"],
        n_layer=shape["n_layer"],
        n_head=shape["n_head"],
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        bos_token_id=eot_id,
        eos_token_id=eot_id,
        # Exact (erf) GELU, as nanoGPT: vectorized on CPU, ~2x faster than the tanh form GPT-2 used.
        activation_function="gelu",
    )
    gpt_config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        model = GPT2LMHeadModel(gpt_config)
    # sublora draws the init itself (transformers' draws, in its order): the same weights whatever transformers does
    load_drawn(model, base_state(gpt2_shape(config, vocab_size), config.init_seed),
               keeps_own=lambda name: name == "lm_head.weight")  # the head is tied to wte
    return model


def gpt2_shape(config: ModelConfig, vocab_size: int):
    """The shape of the randomly initialized GPT-2 of ``config``."""
    from sublora.core.gpt2_init import GPT2Shape

    shape = config.shape()
    return GPT2Shape(vocab_size, config.block_size, shape["n_embd"], shape["n_layer"])


def lora_targets(config: LoraConfig) -> str:
    """The regex (over full module names) of the layers that get LoRA adapters."""
    groups = [pattern for key, pattern in LORA_TARGETS.items() if getattr(config, key)]
    return rf".*(?:{'|'.join(groups)})$"


def _fused_gelu(path: Path) -> dict:
    """Swap GPT-2's unfused "gelu_new" for torch's fused tanh GELU: the same function, computed faster."""
    import json

    activation = json.loads((path / "config.json").read_text()).get("activation_function", "gelu_new")
    return {"activation_function": "gelu_pytorch_tanh"} if activation == "gelu_new" else {}


def add_lora(model, config: LoraConfig, init_seed: int):
    """Wrap ``model`` with peft LoRA adapters on the configured modules (seeded init)."""
    import torch
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    from sublora.core.gpt2_init import GPT2Shape, load_drawn, lora_state

    peft_config = PeftLoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=lora_targets(config),
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights transposed; peft resets it for nn.Linear
        bias="none",
    )
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):  # peft's draws: overwritten below
        warnings.simplefilter("ignore")
        net = get_peft_model(model, peft_config)
    # sublora draws LoRA's init itself (peft's draws, in its order): the same adapters whatever peft does
    state = lora_state(GPT2Shape.of(model.config), peft_config.target_modules, config.r, init_seed + 1)
    load_drawn(net, state, "base_model.model.", keeps_own=lambda name: ".lora_" not in name)  # base: the caller's
    return net


def build_hf(impl, config: ModelConfig, lora: LoraConfig, vocab_size: int, eot_id: int):
    """``model.impl=hf``: (transformers GPT-2 + peft LoRA, its adapter) for ``SubspaceModel``."""
    from sublora.core.subspace import default_adapter

    net = add_lora(build_base_model(config, vocab_size, eot_id), lora, config.init_seed)
    return net, default_adapter(net)
