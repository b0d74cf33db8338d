"""Next-token logits of a GPT-2 prior, token by token, with a key/value cache: what the ``lm`` coder calls.

The ``lm`` coder needs the distribution of one character at a time, and its decoder learns each
character only after decoding it. Re-running a fixed-shape window per token (``codec.py``'s exact
scheme) costs a full forward pass per token; here each call feeds only the tokens that are new
since the last call (the last coded character and the fixed characters after it) against cached
keys and values. Exactness rests on one rule instead: the encoder makes exactly the calls the
decoder will make, with the same tokens, in the same groups, at the same positions (the coder's
grammar decides the groups from what both sides know), and both run this same code on the same
weights, dtype and thread count, so every row is the same bits on both sides.

The forward pass is GPT-2's (pre-norm blocks, fused qkv, causal attention scaled by 1/sqrt(head
dim)), written out on the prior's effective weights (each linear layer read through its module,
LoRA included), because the Hugging Face + PEFT stack spends about 4 ms of Python per call on a
model this small. It agrees
with the prior's own forward to float rounding (tests/lmgc/test_lm_coder.py).

When the context is full, it restarts: BOS and the last ``window // 2`` tokens are fed afresh.
"""

from __future__ import annotations

import math

from sublora.lmgc.errors import PriorError


class GPT2Stepper:
    """Incremental logits over one text: ``feed`` tokens, ask ``logits()`` for the next one's row."""

    def __init__(self, prior, window: int):
        import torch

        net = prior.net
        base = net.get_base_model() if hasattr(net, "get_base_model") else net  # PEFT wrappers stay in place
        config = getattr(base, "config", None)
        if getattr(config, "model_type", None) != "gpt2":
            raise PriorError(f"The lm coder runs GPT-2 priors; {prior.spec} is {getattr(config, 'model_type', '?')}.",
                             hint="Use a `sublora train` run (GPT-2) as the prior.")
        if getattr(config, "scale_attn_by_inverse_layer_idx", False) or getattr(config, "reorder_and_upcast_attn", False) \
                or not getattr(config, "scale_attn_weights", True):
            raise PriorError(f"{prior.spec}: a GPT-2 variant with non-standard attention scaling.",
                             hint="Use a prior with GPT-2's default attention (every `sublora train` run has it).")
        from transformers.activations import ACT2FN

        self.act = ACT2FN[config.activation_function]
        self.H, self.C = config.n_head, config.n_embd
        self.hd = self.C // self.H
        self.eps = config.layer_norm_epsilon
        self.window = int(window)
        self.bos = int(prior.bos_id)
        dtype = getattr(torch, prior.dtype)
        tr = base.transformer
        with torch.inference_mode():
            self.wte = _table(tr.wte, dtype)
            self.wpe = _table(tr.wpe, dtype)
            self.head = _affine(base.lm_head, self.C, dtype)  # (C, V), bias None: GPT-2's head has none
            self.ln_f = (_t(tr.ln_f.weight, dtype), _t(tr.ln_f.bias, dtype))
            self.layers = [dict(ln1=(_t(b.ln_1.weight, dtype), _t(b.ln_1.bias, dtype)),
                                ln2=(_t(b.ln_2.weight, dtype), _t(b.ln_2.bias, dtype)),
                                attn=_affine(b.attn.c_attn, self.C, dtype), proj=_affine(b.attn.c_proj, self.C, dtype),
                                fc=_affine(b.mlp.c_fc, self.C, dtype),
                                out=_affine(b.mlp.c_proj, config.n_inner or 4 * self.C, dtype))
                           for b in tr.h]
        if self.window > self.wpe.shape[0]:
            raise PriorError(f"A window of {self.window} tokens exceeds the prior's {self.wpe.shape[0]} positions.",
                             hint=f"Set the coder's window to at most {self.wpe.shape[0]} (or leave it null).")
        shape = (len(self.layers), self.H, self.window, self.hd)
        self.keys, self.values = torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)
        self.scale = 1.0 / math.sqrt(self.hd)
        self.calls = 0
        self.reset()

    def reset(self) -> None:
        """A new text: only the BOS is pending."""
        self.history: list[int] = []  # every token of the text so far (BOS excluded)
        self.cached = 0  # positions in the cache
        self.pending: list[int] = [self.bos]
        self.last = None

    def feed(self, tokens: list[int]) -> None:
        """Tokens of the text, known to both sides, not yet run through the model."""
        self.pending += tokens
        self.history += tokens

    def logits(self):
        """(V,) logits of the next token after everything fed so far."""
        if not self.pending:
            return self.last
        if self.cached + len(self.pending) > self.window:  # full: restart from BOS + the last window // 2 tokens
            keep = self.history[-(self.window // 2):]
            self.cached, self.pending = 0, [self.bos] + keep
        self.last = self._forward(self.pending, self.cached)
        self.cached += len(self.pending)
        self.pending = []
        return self.last

    def _forward(self, ids: list[int], start: int):
        import torch
        import torch.nn.functional as F

        self.calls += 1
        k, H, hd, C = len(ids), self.H, self.hd, self.C
        end = start + k
        with torch.inference_mode():
            x = self.wte[torch.tensor(ids)] + self.wpe[start:end]  # (k, C)
            mask = None
            if k > 1:  # new token i sees the cache and new tokens <= i
                mask = torch.ones(k, end, dtype=torch.bool).tril(diagonal=start)
            for i, layer in enumerate(self.layers):
                h = F.layer_norm(x, (C,), *layer["ln1"], self.eps)
                qkv = torch.addmm(layer["attn"][1], h, layer["attn"][0])  # (k, 3C); GPT-2's Conv1D: x W + b
                q, key, value = qkv.split(C, dim=1)
                self.keys[i, :, start:end] = key.view(k, H, hd).transpose(0, 1)
                self.values[i, :, start:end] = value.view(k, H, hd).transpose(0, 1)
                q = q.view(k, H, hd).transpose(0, 1)  # (H, k, hd)
                scores = torch.matmul(q, self.keys[i, :, :end].transpose(1, 2)) * self.scale  # (H, k, end)
                if mask is not None:
                    scores = scores.masked_fill(~mask, float("-inf"))
                y = torch.matmul(torch.softmax(scores, dim=-1), self.values[i, :, :end])  # (H, k, hd)
                x = x + torch.addmm(layer["proj"][1], y.transpose(0, 1).reshape(k, C), layer["proj"][0])
                h = F.layer_norm(x, (C,), *layer["ln2"], self.eps)
                x = x + torch.addmm(layer["out"][1], self.act(torch.addmm(layer["fc"][1], h, layer["fc"][0])),
                                    layer["out"][0])
            last = F.layer_norm(x[-1:], (C,), *self.ln_f, self.eps)  # (1, C)
            return torch.addmm(self.head[1], last, self.head[0])[0]  # (V,)


def _t(x, dtype):
    return x.detach().to(dtype).contiguous()


def _table(embedding, dtype):
    """(rows, C): an embedding's effective table, read through the module (an adapter on it included)."""
    import torch

    return _t(embedding(torch.arange(embedding.num_embeddings)), dtype)


def _affine(module, n_in: int, dtype):
    """(M, b) with module(x) == x M + b: a linear layer's effective weights, read through the module.

    Probing with the identity and with zero works for a plain Conv1D or Linear and for one wrapped by
    LoRA (base + scale B A) alike, and leaves tied weights alone: merging an adapter on the output
    head into its weight would also change the tied input embedding.
    """
    import torch

    param = next(module.parameters())
    b = module(torch.zeros(1, n_in, dtype=param.dtype))[0]  # (n_out,)
    M = module(torch.eye(n_in, dtype=param.dtype)) - b  # (n_in, n_out)
    return _t(M, dtype), _t(b, dtype)
