"""A local Hugging Face causal LM as a predictor sublora's scorer can call.

The scorer (``sublora.bounds.evaluate``) calls ``model(inputs, theta)`` for logits (B, T, V), reads the output
size from ``model.net.get_output_embeddings()`` and asks ``model.flat_params()`` for theta once. A plain
transformers model has no theta: ``CausalLMPredictor`` passes None through and calls the network as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from sublora.core.errors import CheckpointError

#: Layouts the post-hoc bound is tested on (``config.json`` model_type); others load if transformers knows them.
TESTED_TYPES = ("gpt2", "gpt_neox", "llama")


class CausalLMPredictor(nn.Module):
    """``net`` (a transformers causal LM) called as sublora's scorer calls a SubspaceModel: logits (B, T, V)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def flat_params(self) -> None:
        return None

    def forward(self, inputs: torch.Tensor, theta: None = None) -> torch.Tensor:
        return self.net(input_ids=inputs, use_cache=False).logits


def read_model_config(model_dir: Path) -> dict:
    """config.json of a local model directory, or a CheckpointError saying what is missing."""
    path = Path(model_dir) / "config.json"
    if not Path(model_dir).is_dir():
        raise CheckpointError(f"{model_dir} is not a directory.",
                              hint="Pass a local directory written by save_pretrained() (config.json + weights).")
    if not path.is_file():
        raise CheckpointError(f"{model_dir} is not a Hugging Face model directory (no config.json).",
                              hint="Pass a local directory written by save_pretrained() (config.json + weights).")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}.") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise CheckpointError(f"{path} names no model_type: not a transformers model config.")
    return config


def load_causal_lm(model_dir: str | Path) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)`` in float32, eval mode.

    A directory that is not a causal LM (no config.json, a model type with no causal-LM head, missing
    weights) is refused with one CheckpointError naming what was found.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model_dir = Path(model_dir)
    config = read_model_config(model_dir)
    try:
        net = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{model_dir} (model_type {config['model_type']!r}) is not a causal language model: {exc}".split("\n")[0],
            hint="bound-model needs a model AutoModelForCausalLM loads (GPT-2, GPT-NeoX/Pythia, LLaMA layouts).",
        ) from exc
    except OSError as exc:
        raise CheckpointError(f"{model_dir} has no loadable weights: {exc}".split("\n")[0],
                              hint="The directory needs model.safetensors (or pytorch_model.bin) next to config.json.") from exc
    if net.get_output_embeddings() is None:
        raise CheckpointError(f"{model_dir} has no output layer over tokens: not a causal language model.")
    net.eval()
    return net
