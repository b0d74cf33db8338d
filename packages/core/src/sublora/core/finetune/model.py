"""A sequence classifier on a GPT-2, trained in a LoRA subspace as in pretraining.

    base (preset | pretrained directory | sublora run) -> LoRA (peft) -> + head (Linear n_embd -> C)
    -> SubspaceModel: theta = theta0 + P w over the LoRA tensors AND the head

The head is a trainable tensor of the wrapped network, so it lies in the subspace: its seeded
init is part of theta0 and whatever it learns is carried by w, whose bits the bound charges.
Nothing outside w is trained. Features of an example: the mean of the final hidden states over
its tokens (or the last token's state), padding excluded; the causal model never lets padding
after the text change them.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sublora.core.config import PRESETS, ModelConfig
from sublora.core.errors import CheckpointError, ConfigError
from sublora.core.subspace import ModuleAdapter, SubspaceModel
from torch import nn

HEAD_SEED_OFFSET = 2  # the head's init seed is model.init_seed + this (LoRA uses + 1)


class SequenceClassifier(nn.Module):
    """``(ids (B, T), lengths (B,)) -> logits (B, C)`` from a (LoRA-wrapped) GPT-2 and a linear head."""

    def __init__(self, lm: nn.Module, n_embd: int, num_classes: int, pooling: str, head_seed: int):
        super().__init__()
        self.lm = lm
        self.pooling = pooling
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(head_seed)
            self.head = nn.Linear(n_embd, num_classes)

    def transformer(self) -> nn.Module:
        base = self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm
        return base.transformer

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.transformer()(input_ids=ids, use_cache=False).last_hidden_state  # (B, T, n_embd)
        if self.pooling == "last":
            pooled = h[torch.arange(h.size(0)), lengths - 1]  # (B, n_embd)
        else:
            mask = (torch.arange(ids.size(1), device=ids.device)[None, :] < lengths[:, None]).to(h.dtype)  # (B, T)
            pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (B, n_embd)
        return self.head(pooled)  # (B, C)


@dataclass
class Base:
    """The frozen GPT-2 a classifier is built on, and what identifies it (recorded, checked by verify)."""

    lm: Any  # GPT2LMHeadModel
    tokenizer: str
    identity: dict[str, Any]


def resolve_base(base: str, block_size: int, init_seed: int, tokenizer: str | None, run_loader=None) -> Base:
    """A preset name (random init), a local pretrained directory, or a sublora run directory.

    ``run_loader(path) -> (SubspaceModel, RunConfig, identity)`` loads a run's model (default: its best
    checkpoint; sublora.bounds passes one that prefers the certified model).
    """
    from sublora.core.model import build_base_model
    from sublora.core.registry import registry

    path = Path(base).expanduser()
    if base in PRESETS and not path.exists():
        spec = tokenizer or "bytes"
        tok = registry("tokenizer").config(spec, {}).build()
        config = ModelConfig(preset=base, block_size=block_size, init_seed=init_seed)
        lm = build_base_model(config, tok.vocab_size, tok.eot_id)
        return Base(lm, spec, {"kind": "preset", "preset": base, "init_seed": init_seed, "vocab_size": tok.vocab_size})
    if (path / "manifest.json").is_file():
        return _from_run(path, block_size, tokenizer, run_loader or load_best)
    if (path / "config.json").is_file():
        spec = tokenizer or "tiktoken:gpt2"
        tok = registry("tokenizer").config(spec, {}).build()
        lm = build_base_model(ModelConfig(pretrained=path, block_size=block_size), tok.vocab_size, tok.eot_id)
        return Base(lm, spec, {"kind": "pretrained", "path": str(path.resolve()), "weights_sha256": _dir_sha256(path)})
    raise ConfigError(f"--model {base!r} is neither a preset ({', '.join(PRESETS)}), a pretrained directory "
                      "(config.json) nor a sublora run (manifest.json).",
                      hint="Name a preset, or point at a directory written by save_pretrained() or `sublora train`.")


def load_best(path: Path):
    """A run's best checkpoint: (model, config, identity)."""
    from sublora.core.data.dataset import file_sha256
    from sublora.core.rundir import RunDir
    from sublora.core.train import load_trained

    model, config, _ = load_trained(path)
    return model, config, {"kind": "run", "path": str(Path(path).resolve()), "model": "best checkpoint",
                           "file_sha256": file_sha256(RunDir(Path(path)).best)}


def _from_run(path: Path, block_size: int, tokenizer: str | None, run_loader) -> Base:
    """A sublora run's model (``run_loader``), LoRA merged into plain GPT-2 weights."""
    model, config, identity = run_loader(path)
    if config.model.impl != "hf":  # the classifier reads transformers' GPT-2 (hidden states, peft)
        from sublora.core.build import as_hf
        from sublora.core.registry import registry

        tok = registry("tokenizer").config(config.data.tokenizer, config.data.tokenizer_options).build()
        model = as_hf(model, config, tok.vocab_size, tok.eot_id)
    if tokenizer is not None and tokenizer != config.data.tokenizer:
        raise ConfigError(f"model.tokenizer={tokenizer!r} differs from the run's tokenizer {config.data.tokenizer!r}.",
                          hint="Drop --model.tokenizer: a run's model reads its own tokens.")
    if block_size > config.model.block_size:
        raise ConfigError(f"model.block_size={block_size} exceeds the run's context ({config.model.block_size}).",
                          hint=f"Set --model.block_size to at most {config.model.block_size}.")
    net = model.net
    with torch.no_grad():
        for name, value in model.param_dict(model.flat_params()).items():
            net.get_parameter(name).copy_(value)
        head = net.get_base_model().lm_head
        layer = getattr(head, "base_layer", head)  # LoRA on the tied LM head: untie before merging, or the merge
        layer.weight = nn.Parameter(layer.weight.detach().clone())  # would move the token embeddings too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft: "embeddings are no longer tied" (untied on purpose above)
        lm = net.merge_and_unload()
    for p in lm.parameters():
        p.requires_grad_(False)
    return Base(lm, config.data.tokenizer, identity)


def _dir_sha256(path: Path) -> str:
    """sha256 over the weight files of a pretrained directory (names and bytes, sorted)."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in (".safetensors", ".bin", ".json") and f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def build_classifier(config, num_classes: int, base: Base | None = None,
                     run_loader=None) -> tuple[SubspaceModel, Base]:
    """The SubspaceModel of a finetuning config (theta0 and P rebuilt from its seeds) and its base."""
    from sublora.core.model import add_lora
    from sublora.core.registry import registry

    m = config.model
    base = base or resolve_base(m.base, m.block_size, m.init_seed, m.tokenizer, run_loader)
    if base.lm.config.n_positions < m.block_size:
        raise ConfigError(f"model.block_size={m.block_size} exceeds the base's context ({base.lm.config.n_positions}).")
    lm = add_lora(base.lm, config.lora, m.init_seed)
    net = SequenceClassifier(lm, base.lm.config.n_embd, num_classes, m.pooling, m.init_seed + HEAD_SEED_OFFSET)
    projector = registry("projector").config(config.sublora.projector, config.sublora.projector_options)
    model = SubspaceModel(net, projector.build, config.sublora.intrinsic_dim, config.sublora.seed,
                          adapter=ModuleAdapter())
    if not any(s.name.startswith("head.") for s in model.layout.slots):
        raise CheckpointError("The classification head is not in the subspace.")  # an invariant, not user input
    return model, base
