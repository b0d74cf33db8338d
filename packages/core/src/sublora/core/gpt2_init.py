"""GPT-2's seeded random initialization and peft's LoRA initialization, computed without either library.

Why: the base weights of a run are never stored; they are rebuilt from ``model.init_seed``. Drawn
here, they no longer depend on the installed transformers and peft (a newer release that changed
its init would otherwise change every rebuilt model, and with it the certified predictor), and the
``lean`` model is built without importing them (~3 s per process).

The draws are those of transformers' ``GPT2LMHeadModel(config)`` and peft's ``get_peft_model`` with
default LoRA init, in their order (verified against transformers 5.24 and peft 0.21), so a run made
with either library keeps its bits: tests/core/test_gpt2_init.py compares every tensor with the
libraries' own, bit for bit, and pins the result by digests.

1. module construction: ``wte`` and ``wpe`` N(0, 1) (nn.Embedding); per layer the four Conv1D
   weights N(0, 0.02) (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj);
2. GPT2Model's init: ``wte``, ``wpe`` N(0, 0.02); per layer each Conv1D N(0, 0.02), and each
   residual projection (attn.c_proj, mlp.c_proj) again N(0, 0.02 / sqrt(2 n_layer)), its value;
3. the head: nn.Linear's kaiming-uniform draw, then N(0, 0.02); both discarded (tied to ``wte``).

Biases are zero, LayerNorms one and zero. LoRA (seed ``init_seed + 1``), per target module in
module order: ``lora_A`` and ``lora_B`` constructed (nn.Linear's kaiming-uniform draws), then
``lora_A`` drawn again (its value) and ``lora_B`` zero.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

INITIALIZER_RANGE = 0.02  # GPT2Config's initializer_range


@dataclass(frozen=True)
class GPT2Shape:
    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_inner: int | None = None

    @classmethod
    def of(cls, hf_config) -> GPT2Shape:
        """The shape of a transformers GPT2Config."""
        return cls(hf_config.vocab_size, hf_config.n_positions, hf_config.n_embd, hf_config.n_layer, hf_config.n_inner)

    @property
    def inner(self) -> int:
        return self.n_inner or 4 * self.n_embd

    def linear_layers(self) -> list[tuple[str, int, int]]:
        """(name, in, out) of every linear layer in module order, the head last."""
        C, inner = self.n_embd, self.inner
        layers = []
        for i in range(self.n_layer):
            h = f"transformer.h.{i}"
            layers += [(f"{h}.attn.c_attn", C, 3 * C), (f"{h}.attn.c_proj", C, C),
                       (f"{h}.mlp.c_fc", C, inner), (f"{h}.mlp.c_proj", inner, C)]
        return [*layers, ("lm_head", C, self.vocab_size)]


def _normal(shape: tuple[int, ...], std: float) -> torch.Tensor:
    return torch.empty(shape).normal_(0.0, std)


def _kaiming(rows: int, cols: int) -> torch.Tensor:
    """nn.Linear(cols, rows).weight's draw."""
    return torch.nn.init.kaiming_uniform_(torch.empty(rows, cols), a=math.sqrt(5))


def base_state(shape: GPT2Shape, seed: int) -> dict[str, torch.Tensor]:
    """The randomly initialized GPT2LMHeadModel's parameters (transformers' names, head tied: not listed)."""
    C, P, V = shape.n_embd, shape.n_positions, shape.vocab_size
    residual_std = INITIALIZER_RANGE / math.sqrt(2 * shape.n_layer)
    conv = [(name, (n_in, n_out)) for name, n_in, n_out in shape.linear_layers()[:-1]]
    state: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _normal((V, C), 1.0), _normal((P, C), 1.0)  # noqa: B018 - construction draws, overwritten below
        for _, size in conv:
            _normal(size, INITIALIZER_RANGE)
        state["transformer.wte.weight"] = _normal((V, C), INITIALIZER_RANGE)
        state["transformer.wpe.weight"] = _normal((P, C), INITIALIZER_RANGE)
        for name, size in conv:
            state[f"{name}.weight"] = _normal(size, INITIALIZER_RANGE)
            if name.endswith("c_proj"):  # GPT-2's scaled init of the residual projections
                state[f"{name}.weight"] = _normal(size, residual_std)
        _kaiming(V, C), _normal((V, C), INITIALIZER_RANGE)  # noqa: B018 - the head's draws; tied to wte
    for name, size in conv:
        state[f"{name}.bias"] = torch.zeros(size[1])
    for i in range(shape.n_layer):
        for ln in ("ln_1", "ln_2"):
            state[f"transformer.h.{i}.{ln}.weight"], state[f"transformer.h.{i}.{ln}.bias"] = torch.ones(C), torch.zeros(C)
    state["transformer.ln_f.weight"], state["transformer.ln_f.bias"] = torch.ones(C), torch.zeros(C)
    return state


def load_drawn(module: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str = "",
               keeps_own: Callable[[str], bool] = lambda name: False) -> None:
    """Load tensors drawn here into ``module`` by name (``prefix`` + name): every one must land, and only the
    module tensors ``keeps_own`` names may keep the module's own init (e.g. a head tied to ``wte``)."""
    missing, unexpected = module.load_state_dict({prefix + k: v for k, v in state.items()}, strict=False)
    assert not unexpected and all(keeps_own(name) for name in missing), (missing, unexpected)


def lora_state(shape: GPT2Shape, targets: str, r: int, seed: int) -> dict[str, torch.Tensor]:
    """peft's LoRA init of the linear layers whose full name matches ``targets`` (a regex), peft's names
    below ``base_model.model.``: ``<layer>.lora_A.default.weight`` (r, in), ``<layer>.lora_B.default.weight`` (out, r)."""
    pattern = re.compile(targets)
    state: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name, n_in, n_out in shape.linear_layers():
            if not pattern.fullmatch(name):
                continue
            _kaiming(r, n_in), _kaiming(n_out, r)  # noqa: B018 - construction of lora_A and lora_B
            state[f"{name}.lora_A.default.weight"] = _kaiming(r, n_in)
            state[f"{name}.lora_B.default.weight"] = torch.zeros(n_out, r)
    return state
