"""A lean GPT-2 with LoRA built in: the same function as transformers' GPT-2 + peft, fewer calls.

Why: on CPU at sublora's sizes a training step spends a large share of its time in
module overhead (peft's per-call adapter bookkeeping, transformers' attention
dispatch and mask logic, Conv1D views). This module computes the same logits with
plain tensor ops, nanoGPT-style.

Every tensor keeps the name it has in transformers + peft
(``base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight``, ...), so the
layout, every projector and every checkpoint are shared with the ``hf`` model. A random
init comes from ``sublora.core.gpt2_init``, as the ``hf`` model's does (no transformers or peft
import); a pretrained directory is loaded by transformers and converted (``from_peft``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sublora.core.errors import ConfigError

# transformers activation names -> the GELU form they compute
_GELU = {"gelu": "none", "gelu_pytorch_tanh": "tanh", "gelu_new": "tanh"}


class Conv1D(nn.Module):
    """GPT-2's linear layer: weight stored (in, out), y = x W + b."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1] + (self.weight.size(1),)
        x2 = x.reshape(-1, x.size(-1))
        y = torch.mm(x2, self.weight) if self.bias is None else torch.addmm(self.bias, x2, self.weight)
        return y.view(shape)


class _Weight(nn.Module):
    """Holds one LoRA factor as ``.weight``, the name peft's nn.Linear gives it."""

    def __init__(self, rows: int, cols: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(rows, cols))


class _LoraDelta(torch.autograd.Function):
    """(x A^T) B^T * s for x (N, in), A (r, in), B (out, r), with every product shaped r x (large).

    The same function as peft's ``lora_B(lora_A(x)) * s``, arranged for BLAS: the naive order makes
    products with r (= 4) output columns (x A^T, dY B, dY^T (x A^T)), which run ~7x below the
    machine's matmul rate on CPU; here r is always the row count or the inner size.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, s: float) -> torch.Tensor:
        u = a @ x.t()  # (r, N)
        ctx.save_for_backward(x, a, b, u)
        ctx.s = s
        return torch.mm(u.t(), b.t()) * s  # (N, out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, a, b, u = ctx.saved_tensors
        g = grad * ctx.s  # (N, out)
        gu = b.t() @ g.t()  # (r, N)
        grad_x = gu.t() @ a if ctx.needs_input_grad[0] else None  # (N, in)
        grad_a = gu @ x if ctx.needs_input_grad[1] else None  # (r, in)
        grad_b = (u @ g).t() if ctx.needs_input_grad[2] else None  # (out, r)
        return grad_x, grad_a, grad_b, None


def _autocast(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """The tensors in autocast's dtype when autocast is on (``train.dtype=bfloat16``), as nn.Linear's inputs
    would be: the fused LoRA nodes' products mix their operands (addmm_ into the base product, and their
    backward runs outside autocast), so they get one dtype here; the casts' backward returns float32 grads."""
    if not tensors or tensors[0] is None:
        return tensors
    device = tensors[0].device.type
    if not torch.is_autocast_enabled(device):
        return tensors
    dtype = torch.get_autocast_dtype(device)
    return tuple(t.to(dtype) if t is not None and t.is_floating_point() else t for t in tensors)


class _LoraLinear(torch.autograd.Function):
    """x W + b + s (x A^T) B^T in one node, for a frozen W (in, out) and bias: the LoRA term is accumulated
    into the base product by BLAS (no separate scale and add over (N, out)), the same for dx in backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor,
                s: float) -> torch.Tensor:
        u = a @ x.t()  # (r, N)
        y = torch.mm(x, w) if bias is None else torch.addmm(bias, x, w)  # (N, out)
        y.addmm_(u.t(), b.t(), alpha=s)
        ctx.save_for_backward(x, w, a, b, u)
        ctx.s = s
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w, a, b, u = ctx.saved_tensors
        s = ctx.s
        need_x, need_w, need_bias, need_a, need_b = ctx.needs_input_grad[:5]
        gu = b.t() @ grad.t()  # (r, N), times s below
        grad_x = grad_w = grad_bias = grad_a = grad_b = None
        if need_x:
            grad_x = torch.mm(grad, w.t())
            grad_x.addmm_(gu.t(), a, alpha=s)  # (N, in)
        if need_w:
            grad_w = x.t() @ grad
        if need_bias:
            grad_bias = grad.sum(0)
        if need_a:
            grad_a = torch.mm(gu, x).mul_(s)  # (r, in)
        if need_b:
            grad_b = torch.mm(u, grad).t().mul_(s)  # (out, r)
        return grad_x, grad_w, grad_bias, grad_a, grad_b, None


class LoraLayer(nn.Module):
    """base_layer(x) + B(A(dropout(x))) * scaling, as peft's LoRA layer, without its per-call bookkeeping."""

    def __init__(self, base_layer: nn.Module, n_in: int, n_out: int, r: int, scaling: float, dropout: float):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.ModuleDict({"default": _Weight(r, n_in)})  # (r, in), as nn.Linear(in, r)
        self.lora_B = nn.ModuleDict({"default": _Weight(n_out, r)})  # (out, r)
        self.scaling = scaling
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lora_A["default"].weight
        b = self.lora_B["default"].weight
        base = self.base_layer
        if isinstance(self.lora_dropout, nn.Identity):  # one fused node (the default: no LoRA dropout)
            w = base.weight if isinstance(base, Conv1D) else base.weight.t()  # (in, out)
            x2, w, bias, a, b = _autocast(x.reshape(-1, x.size(-1)), w, base.bias, a, b)
            y = _LoraLinear.apply(x2, w, bias, a, b, self.scaling)
            return y.view(x.shape[:-1] + (w.size(1),))
        h = self.lora_dropout(x)
        h, a, b = _autocast(h.reshape(-1, h.size(-1)), a, b)
        lora = _LoraDelta.apply(h, a, b, self.scaling)  # (N, out)
        y = self.base_layer(x)
        return y + lora.view(y.shape)


class Attention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float):
        super().__init__()
        self.n_head = n_head
        self.c_attn: nn.Module = Conv1D(n_embd, 3 * n_embd)
        self.c_proj: nn.Module = Conv1D(n_embd, n_embd)
        self.attn_dropout = dropout
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0,
                                           is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, n_embd: int, n_inner: int, approximate: str, dropout: float):
        super().__init__()
        self.c_fc: nn.Module = Conv1D(n_embd, n_inner)
        self.c_proj: nn.Module = Conv1D(n_inner, n_embd)
        self.approximate = approximate
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, n_inner: int, eps: float, approximate: str, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=eps)
        self.attn = Attention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, eps=eps)
        self.mlp = MLP(n_embd, n_inner, approximate, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, vocab_size: int, n_positions: int, n_embd: int, blocks: list[Block], eps: float, dropout: float):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.drop = nn.Dropout(dropout)
        self.h = nn.ModuleList(blocks)
        self.ln_f = nn.LayerNorm(n_embd, eps=eps)


class LeanGPT2(nn.Module):
    """GPT-2 LM head model with transformers' tensor names; ``forward(input_ids)`` -> logits (B, T, V)."""

    def __init__(self, vocab_size: int, n_positions: int, n_embd: int, n_layer: int, n_head: int,
                 n_inner: int | None = None, layer_norm_epsilon: float = 1e-5, activation: str = "gelu",
                 dropout: float = 0.0):
        super().__init__()
        if activation not in _GELU:
            raise ConfigError(f"The lean GPT-2 has no activation {activation!r} (it has {', '.join(_GELU)}).",
                              hint="Use model.impl=hf for this model.")
        blocks = [Block(n_embd, n_head, n_inner or 4 * n_embd, layer_norm_epsilon, _GELU[activation], dropout)
                  for _ in range(n_layer)]
        self.transformer = Transformer(vocab_size, n_positions, n_embd, blocks, layer_norm_epsilon, dropout)
        self.lm_head: nn.Module = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as GPT-2
        self.n_positions = n_positions

    @classmethod
    def from_hf_config(cls, config: Any) -> "LeanGPT2":
        """An (uninitialized) LeanGPT2 of a transformers GPT2Config's shape; refuses what it does not compute."""
        unsupported = [name for name in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "add_cross_attention")
                       if getattr(config, name, False)]
        if not getattr(config, "scale_attn_weights", True):
            unsupported.append("scale_attn_weights=False")
        if not getattr(config, "tie_word_embeddings", True):
            unsupported.append("tie_word_embeddings=False")
        if unsupported:
            raise ConfigError(f"The lean GPT-2 does not compute this model's {', '.join(unsupported)}.",
                              hint="Use model.impl=hf for this model.")
        dropout = {config.resid_pdrop, config.embd_pdrop, config.attn_pdrop}
        if len(dropout) != 1:
            raise ConfigError("The lean GPT-2 uses one dropout rate; this model sets resid/embd/attn_pdrop apart.",
                              hint="Use model.impl=hf for this model.")
        return cls(config.vocab_size, config.n_positions, config.n_embd, config.n_layer, config.n_head,
                   config.n_inner, config.layer_norm_epsilon, config.activation_function, dropout.pop())

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        T = input_ids.size(-1)
        assert T <= self.n_positions, f"sequence of {T} tokens, longer than the context ({self.n_positions})"
        tr = self.transformer
        x = tr.drop(tr.wte(input_ids) + tr.wpe(torch.arange(T, device=input_ids.device)))  # (B, T, C)
        for block in tr.h:
            x = block(x)
        return self.lm_head(tr.ln_f(x))  # (B, T, V)

    def get_output_embeddings(self) -> nn.Linear:
        """The head as an nn.Linear (its base layer when LoRA wraps it), as transformers + peft give it."""
        head = self.lm_head
        return head.base_layer if isinstance(head, LoraLayer) else head


class _Holder(nn.Module):
    """peft's LoraModel: its ``.model`` is the wrapped GPT-2."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


class LeanLoraGPT2(nn.Module):
    """A LeanGPT2 with LoRA layers, named as peft names them (``base_model.model.<...>``).

    ``forward(input_ids, use_cache=False)`` -> logits (B, T, V); ``use_cache`` is accepted (sublora's
    causal-LM adapter passes it) and ignored: there is no cache.
    """

    def __init__(self, model: LeanGPT2):
        super().__init__()
        self.base_model = _Holder(model)

    def get_base_model(self) -> LeanGPT2:
        return self.base_model.model

    def get_output_embeddings(self) -> nn.Linear:
        return self.base_model.model.get_output_embeddings()

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> torch.Tensor:
        return self.base_model.model(input_ids)

    @torch.no_grad()
    def merge_and_unload(self) -> LeanGPT2:
        """The GPT-2 with each LoRA layer folded into its base weight (W + s (B A)^T), as peft's method.

        Each merged layer gets its own weight tensor, so merging the head's LoRA unties it from the
        token embedding instead of changing the embedding too. Changes this model in place.
        """
        model = self.base_model.model
        for name, module in list(model.named_modules()):
            if not isinstance(module, LoraLayer):
                continue
            base = module.base_layer
            delta = (module.lora_B["default"].weight @ module.lora_A["default"].weight) * module.scaling  # (out, in)
            weight = base.weight.detach().clone()
            weight += delta.t() if isinstance(base, Conv1D) else delta
            base.weight = nn.Parameter(weight, requires_grad=False)
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, base)
        return model


def wrap_lora(model: LeanGPT2, targets: str, r: int, alpha: float, dropout: float) -> LeanLoraGPT2:
    """Replace the modules whose full name matches ``targets`` (a regex) by LoRA layers (A, B zero: load them)."""
    import re

    pattern = re.compile(targets)
    for name, module in list(model.named_modules()):
        if not name or not pattern.fullmatch(name):
            continue
        if isinstance(module, Conv1D):
            n_in, n_out = module.weight.shape
        elif isinstance(module, nn.Linear):
            n_out, n_in = module.weight.shape
        else:
            raise ConfigError(f"LoRA target {name} is a {type(module).__name__}, not a linear layer.")
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, LoraLayer(module, n_in, n_out, r, alpha / r, dropout))
    return LeanLoraGPT2(model)


def from_peft(peft_model: nn.Module) -> LeanLoraGPT2:
    """The lean copy of a transformers GPT-2 wrapped by peft LoRA: the same tensors under the same names."""
    base = peft_model.get_base_model()
    lora = peft_model.peft_config["default"]
    lean = LeanGPT2.from_hf_config(base.config)
    targets = lora.target_modules if isinstance(lora.target_modules, str) else None
    if targets is None:
        raise ConfigError("The lean GPT-2 converts LoRA configs given by a target regex only.",
                          hint="Use model.impl=hf for this model.")
    net = wrap_lora(lean, targets, lora.r, lora.lora_alpha, lora.lora_dropout)
    state = peft_model.state_dict()
    missing, unexpected = net.load_state_dict(state, strict=False)
    # the tied head appears under both names in one state dict and the other
    missing = [m for m in missing if not m.endswith("lm_head.base_layer.weight") and not m.endswith("lm_head.weight")]
    if missing or unexpected:
        raise ConfigError(f"The lean GPT-2 does not match this model: missing {missing[:3]}, unexpected {unexpected[:3]}.",
                          hint="Use model.impl=hf for this model.")
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    for n, p in net.named_parameters():
        p.requires_grad_(n in trainable)
    scaling = lora.lora_alpha / lora.r
    assert not getattr(lora, "use_rslora", False), "rsLoRA scaling is not computed by the lean model"
    assert all(m.scaling == scaling for m in net.modules() if isinstance(m, LoraLayer))
    net.train(peft_model.training)
    return net


def lean_adapter():
    """How SubspaceModel calls a LeanLoraGPT2: as a causal LM (theta may come second), logits returned as they are."""
    from sublora.core.subspace import CausalLMAdapter

    class LeanAdapter(CausalLMAdapter):
        def output(self, out):
            return out

    return LeanAdapter()


def build_lean(impl, config, lora, vocab_size: int, eot_id: int):
    """``model.impl=lean`` and its adapter: a random init drawn by sublora.core.gpt2_init (no transformers or
    peft import); a pretrained directory loaded by transformers and converted."""
    from sublora.core.model import add_lora, build_base_model

    if config.pretrained is not None:
        return from_peft(add_lora(build_base_model(config, vocab_size, eot_id), lora, config.init_seed)), lean_adapter()
    return random_lean(config, lora, vocab_size), lean_adapter()


def random_lean(config, lora, vocab_size: int) -> LeanLoraGPT2:
    """The randomly initialized GPT-2 of ``config`` with LoRA: the tensors ``model.impl=hf`` builds, bit for bit
    (the base init loaded before LoRA wraps its layers, as ``build_base_model`` then ``add_lora`` do)."""
    from sublora.core.gpt2_init import base_state, load_drawn, lora_state
    from sublora.core.model import gpt2_shape, lora_targets

    shape, dims, targets = gpt2_shape(config, vocab_size), config.shape(), lora_targets(lora)
    with torch.random.fork_rng(devices=[]):  # the modules' own init draws: overwritten, and the caller's RNG untouched
        model = LeanGPT2(vocab_size, config.block_size, dims["n_embd"], dims["n_layer"], dims["n_head"],
                         dropout=config.dropout)
    load_drawn(model, base_state(shape, config.init_seed), keeps_own=lambda name: name == "lm_head.weight")  # tied
    net = wrap_lora(model, targets, lora.r, lora.alpha, lora.dropout)
    adapters = lora_state(shape, targets, lora.r, config.init_seed + 1)
    load_drawn(net, adapters, "base_model.model.", keeps_own=lambda name: ".lora_" not in name)  # base: loaded above
    for name, p in net.named_parameters():
        p.requires_grad_(".lora_A." in name or ".lora_B." in name)
    return net
