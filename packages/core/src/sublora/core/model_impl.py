"""Which GPT-2 implementation computes the model (``model.impl``): a registry kind, ``sublora.models``.

Both built-ins compute the same function from the same tensors under the same names, so
the layout, every projector and every checkpoint are shared between them:

- ``hf``: transformers' GPT-2 wrapped by peft LoRA (the default; loads pretrained directories).
- ``lean``: sublora's own nanoGPT-style GPT-2 with LoRA built in (``sublora.core.lean_gpt2``),
  converted from the ``hf`` model so the init and pretrained loading are the same; faster to train.

An implementation is ``build(impl_config, model_config, lora_config, vocab_size, eot_id) -> (net, adapter)``:
the LoRA-wrapped network whose trainable tensors theta covers, and how ``SubspaceModel`` calls it.
No torch import here: the registry loads this module to list and validate.
"""

from __future__ import annotations

from typing import ClassVar

from sublora.core.component import ComponentConfig


class ModelImplConfig(ComponentConfig):
    """A GPT-2 implementation. ``implementation`` names its build function."""

    kind: ClassVar[str] = "model"


class HFModelConfig(ModelImplConfig):
    description: ClassVar[str] = "transformers' GPT2LMHeadModel + peft LoRA (loads pretrained directories)."
    implementation: ClassVar[str] = "sublora.core.model:build_hf"


class LeanModelConfig(ModelImplConfig):
    description: ClassVar[str] = ("sublora's own GPT-2 with LoRA built in: the hf model's tensors and names, "
                                  "the same logits to float rounding, faster to train on CPU.")
    implementation: ClassVar[str] = "sublora.core.lean_gpt2:build_lean"
