"""The certified model as a plain network for scoring: theta = theta0 + P w computed once, LoRA merged.

    predict = merged_predictor(model, device="cpu")   # inputs (B, T) -> logits (B, T, V), float32
    logits = predict(inputs)

Training calls the network through ``torch.func.functional_call`` with theta split into views and
peft's LoRA layers computing ``x W + s (x A^T) B^T`` on every call. The hypothesis is fixed while
scoring, so all of that is done once here: theta is materialised into the network's tensors and each
LoRA layer is merged into its base weight (W + s (B A)^T), leaving a network of dense layers.

GPT-2 ties its LM head to the token embedding. Merging a LoRA on the head adds s B A to that shared
tensor, which would also change the embedding; the head is therefore untied (given its own copy of
the weight) before merging. The merged network computes the same function; its float32 logits differ
from the unmerged ones only by rounding (~1e-6 relative), which tests/bounds/test_scoring_fast.py checks.

``bound.dtype=bfloat16`` casts the merged network (weights and activations) to bfloat16: another
predictor, the one the certificate then names (docs/bounds.md section 2); its logits are cast back to
float32 before any statistic.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable

import torch
from torch import nn

from sublora.core.errors import BoundError


def _untie_lora_targets(net: nn.Module) -> None:
    """Give every peft LoRA-wrapped layer its own weight when it shares it with another module (GPT-2's head).

    (The lean model's own merge unties; without peft imported, no layer can be peft's.)"""
    if "peft" not in sys.modules:
        return
    from peft.tuners.lora import LoraLayer

    owners: dict[int, int] = {}
    for module in net.modules():
        for p in module.parameters(recurse=False):
            owners[id(p)] = owners.get(id(p), 0) + 1
    for module in net.modules():
        if isinstance(module, LoraLayer):
            base = module.get_base_layer()
            if owners.get(id(base.weight), 0) > 1:
                base.weight = nn.Parameter(base.weight.detach().clone(), requires_grad=False)


def merged_network(model) -> nn.Module:
    """A copy of ``model.net`` holding theta = theta0 + P w in its own tensors, with LoRA merged; eval mode.

    ``model`` (a ``SubspaceModel``) is not changed. A network without peft adapters is returned with theta
    loaded and nothing merged.
    """
    with torch.no_grad():
        theta = model.flat_params().detach()
        net = copy.deepcopy(model.net)
        for name, value in model.param_dict(theta).items():
            net.get_parameter(name).copy_(value)
        if callable(getattr(net, "merge_and_unload", None)):
            _untie_lora_targets(net)
            with warnings.catch_warnings():  # peft warns about the tied head, untied just above
                warnings.simplefilter("ignore")
                net = net.merge_and_unload()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def merged_predictor(model, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> Callable[[torch.Tensor], torch.Tensor]:
    """``inputs (B, T) -> logits (B, T, V)`` of the certified model, float32 on the CPU, from a merged copy
    of the network on ``device`` (computing in ``dtype``). Call under ``torch.inference_mode``."""
    net = merged_network(model).to(device=device, dtype=dtype)
    adapter = model.adapter

    def predict(inputs: torch.Tensor) -> torch.Tensor:
        args, kwargs, _ = adapter.arguments((inputs.to(device),), {}, None)
        return adapter.output(net(*args, **kwargs)).float().cpu()

    return predict


def predictor(model, device: str | torch.device = "cpu", dtype: str = "float32") -> Callable[[torch.Tensor], torch.Tensor]:
    """How the scorer calls ``model``: the merged copy for a ``SubspaceModel``, computing in ``dtype``
    (``bound.dtype``); any other model (a post-hoc predictor) as it is called in training,
    ``model(inputs, model.flat_params())``, on the CPU in float32."""
    from sublora.core.subspace import SubspaceModel

    if isinstance(model, SubspaceModel):
        return merged_predictor(model, device, getattr(torch, dtype))
    if dtype != "float32":
        raise BoundError(f"bound.dtype={dtype} applies to the merged network of a subspace model only.",
                         hint="Score this predictor with bound.dtype=float32.")
    return unmerged_predictor(model)


def unmerged_predictor(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training-time call (theta split into views, LoRA per call): the reference the merged one is tested on."""
    theta = model.flat_params()
    return lambda inputs: model(inputs, theta).float()
