"""Priors: the causal language models LM-GC codes with, loaded the same way on encode and decode.

A prior is either a run trained by ``sublora train`` (its subspace model, with theta = theta0 + P w
written into the network once, so a forward pass costs what the plain GPT-2 costs) or a local
Hugging Face directory with its tokenizer. Both give the same small interface: text <-> ids, the
BOS id, V, the longest context, the logits of one window, an ``identity`` (sha256 of everything that
decides the probabilities: weights, tokenizer, architecture, dtype) and ``describe()``, which says
what data the prior saw: bits from a prior trained on the numbers being coded are not zero-shot.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sublora.lmgc.errors import PriorError

DEFAULT_WINDOW = 2048  # tokens per window, BOS included (the reference's max_tokens)
CLI_WINDOW = 256  # the CLI's default: a CPU codes 256-token windows at a usable speed
CHECKPOINTS = ("best", "last", "certified")
DTYPES = ("float32", "bfloat16", "float64")
#: a file in a `text` corpus folder saying the corpus is serialized numbers (a neural parameter prior)
CORPUS_MARKER = "lmgc_corpus.json"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                    "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model", "added_tokens.json")


@dataclass
class Prior:
    """A loaded causal LM with its tokenizer. ``spec`` loads the same prior again."""

    spec: str
    kind: str  # "sublora-run" or "hf"
    net: Any  # a torch causal LM: net(input_ids=(1, T)) -> .logits (1, T, V)
    tokenizer: Any  # _ByteTokenizer, _SubloraTokenizer or _HFTokenizer
    bos_id: int
    vocab_size: int  # V: the model's outputs (every id it can code)
    max_context: int | None  # positions the model has (None: no fixed limit)
    dtype: str
    saw: dict[str, Any] = field(default_factory=dict)
    identity_config: dict[str, Any] = field(default_factory=dict)  # architecture and tokenizer, hashed
    identity: str = ""

    @property
    def pad_id(self) -> int:
        """Fills the positions after the last token of a window; never coded (the header counts tokens)."""
        return self.bos_id

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def logits(self, window: np.ndarray):
        """(T, V) logits of one window (1-D ids, BOS first). Always called with the same shape per file."""
        import torch

        x = torch.as_tensor(np.asarray(window, dtype=np.int64)).reshape(1, -1)
        with torch.inference_mode():
            return self.net(input_ids=x, use_cache=False).logits[0]

    def window(self, requested: int | None, default: int = DEFAULT_WINDOW) -> int:
        """The window to use: ``requested``, or ``default`` cut to the model's context."""
        if requested is None:
            return default if self.max_context is None else min(default, self.max_context)
        if requested < 2:
            raise PriorError(f"A window of {requested} tokens holds no token to code (the BOS takes one).",
                             hint="Use --window 2 or more (the reference uses 2048; 256 is the CPU default).")
        if self.max_context is not None and requested > self.max_context:
            raise PriorError(f"--window {requested} exceeds the prior's context of {self.max_context} tokens.",
                             hint=f"Use --window {self.max_context} or less, or a prior trained with a longer "
                             "context (sublora train --model.block_size=N).")
        return requested

    def describe(self) -> str:
        """One paragraph: what the model is and which data it saw."""
        return self.saw.get("summary", self.spec)


def load_prior(spec: str | Path, dtype: str = "float32") -> Prior:
    """Load ``RUN_DIR[:best|last|certified]`` (a sublora run; default best) or a Hugging Face directory."""
    if dtype not in DTYPES:
        raise PriorError(f"Unknown dtype {dtype!r}.", hint=f"Use one of {', '.join(DTYPES)}.")
    path, checkpoint = _parse(str(spec))
    if (path / "manifest.json").is_file():
        prior = _load_run(path, checkpoint or "best", dtype)
    elif checkpoint is not None:
        raise PriorError(f"{path} is not a sublora run directory, so ':{checkpoint}' means nothing there.",
                         hint="Give a run directory (with manifest.json) or a Hugging Face directory alone.")
    elif (path / "config.json").is_file():
        prior = _load_hf(path, dtype)
    else:
        raise PriorError(f"{path} is neither a sublora run (manifest.json) nor a Hugging Face model directory "
                         "(config.json).",
                         hint="Train one with `sublora train --out DIR`, or save a model and its tokenizer with "
                         "save_pretrained(DIR).")
    prior.net.eval()
    prior.identity = _identity(prior)
    return prior


def _parse(spec: str) -> tuple[Path, str | None]:
    head, sep, tail = spec.rpartition(":")
    if sep and tail in CHECKPOINTS and head:
        return Path(head).expanduser(), tail
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise PriorError(f"Prior {spec!r} is not a directory.",
                         hint="Give a sublora run directory (RUN or RUN:best|last|certified) or a local Hugging "
                         "Face model directory; nothing is downloaded.")
    return path, None


# ---- a run trained by `sublora train`


def _load_run(path: Path, checkpoint: str, dtype: str) -> Prior:
    import torch

    from sublora.core.registry import registry

    if checkpoint == "certified":
        try:
            from sublora.bounds.verify import load_certified
        except ImportError as exc:
            raise PriorError("The certified model needs sublora-bounds to decode model.slc.",
                             hint="pip install sublora-bounds, or use RUN:best.") from exc
        model, config, data = load_certified(path)
    else:
        from sublora.core.train import load_trained

        model, config, data = load_trained(path, which=checkpoint)
    from sublora.core.build import as_hf

    model = as_hf(model, config, data.vocab_size, data.eot_id)  # the prior runs transformers' GPT-2 (lean runs too)
    with torch.no_grad():  # theta = theta0 + P w, written into the network once
        theta = model.flat_params()
        for name, tensor in model.param_dict(theta).items():
            model.net.get_parameter(name).copy_(tensor)
    net = model.net.to(getattr(torch, dtype))
    tok_config = registry("tokenizer").config(config.data.tokenizer, config.data.tokenizer_options)
    tokenizer = _ByteTokenizer() if tok_config.spec == "bytes" else _SubloraTokenizer(tok_config.build())
    manifest = json.loads((path / "manifest.json").read_text())
    prior = Prior(spec=f"{path.resolve()}:{checkpoint}", kind="sublora-run", net=net, tokenizer=tokenizer,
                  bos_id=int(data.eot_id), vocab_size=int(data.vocab_size), max_context=config.model.block_size,
                  dtype=dtype)
    prior.saw = _run_saw(path, checkpoint, config, manifest, model)
    prior.identity_config = {"model": config.model.model_dump(mode="json", exclude={"pretrained"}),
                              "lora": config.lora.model_dump(mode="json"),
                              "sublora": config.sublora.model_dump(mode="json"),
                              "tokenizer": {"spec": tok_config.spec, "options": config.data.tokenizer_options}}
    return prior


def _run_saw(path: Path, checkpoint: str, config, manifest: dict, model) -> dict[str, Any]:
    data = manifest.get("data", {})
    source, options = config.data.source, config.data.source_options
    marker = None
    if source == "pystdlib":
        what = "the Python standard library's .py files (sublora's embedded corpus)"
    elif source == "text":
        what = f"local text under {options.get('path')}"
        marker_path = Path(str(options.get("path", ""))) / CORPUS_MARKER
        if marker_path.is_file():
            marker = json.loads(marker_path.read_text())
            what = f"serialized numbers ({marker.get('describe', 'see ' + str(marker_path))})"
    elif source.partition(":")[0] == "lmgc":  # serialized gradients/weights (sublora.lmgc.source): NOT zero-shot
        from sublora.lmgc.provenance import numbers_corpus

        what, marker = numbers_corpus(manifest)
    else:
        what = f"the '{source}' source {json.dumps(options, sort_keys=True)}"
    if config.data.max_documents:
        what += f", first {config.data.max_documents} documents"
    tokens = data.get("n_tokens", {}).get("train")
    steps = manifest.get("training", {}).get("steps")
    shape = config.model.shape()
    # zero-shot only when the data is known to be text; a text folder without the marker may hold anything
    zero_shot = False if marker is not None else (True if source == "pystdlib" else None)
    verdict = {True: ". Zero-shot for gradients and weights: it saw text, not numbers.",
               False: ". NOT zero-shot: it was trained on serialized numbers (a neural parameter prior).",
               None: ". Zero-shot for gradients and weights unless that data held serialized numbers (a corpus "
                     f"made for LM-GC carries {CORPUS_MARKER})."}[zero_shot]
    summary = (f"sublora run {path} ({checkpoint} checkpoint): GPT-2 {shape['n_layer']} layers x {shape['n_embd']} "
               f"wide, context {config.model.block_size}, subspace d={model.d}; trained {steps} steps on {what}"
               + (f" ({tokens:,} training tokens, {config.data.tokenizer} tokenizer)" if tokens else "") + verdict)
    return {"summary": summary, "source": source, "source_options": options, "train_tokens": tokens,
            "steps": steps, "zero_shot": zero_shot, "corpus": marker}


class _ByteTokenizer:
    """sublora's byte tokenizer, strict: text is UTF-8 bytes, and bytes that are not UTF-8 are an error."""

    identity = "bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        if any(not 0 <= i < 256 for i in ids):
            raise PriorError("A decoded token is not a byte (the end-of-text id or beyond).")
        try:
            return bytes(ids).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PriorError(f"Decoded bytes are not UTF-8 ({exc}).") from exc


class _SubloraTokenizer:
    """Any other tokenizer a sublora run was trained with (e.g. tiktoken:gpt2)."""

    def __init__(self, tokenizer):
        self.inner = tokenizer
        self.identity = tokenizer.config.spec

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.inner.encode(text)]

    def decode(self, ids: list[int]) -> str:
        return self.inner.decode(np.asarray(ids, dtype=np.int64))


# ---- a local Hugging Face directory


def _load_hf(path: Path, dtype: str) -> Prior:
    import torch

    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise PriorError("A Hugging Face prior needs the 'transformers' package.",
                         hint="pip install transformers.") from exc
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        net = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError) as exc:
        raise PriorError(f"Could not load a causal LM and its tokenizer from {path} ({type(exc).__name__}: {exc}).",
                         hint="The directory needs config.json, the weights and the tokenizer files "
                         "(model.save_pretrained(DIR) and tokenizer.save_pretrained(DIR)).") from exc
    config = net.config
    bos = next((i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id, config.bos_token_id,
                            config.eos_token_id) if i is not None), None)
    if bos is None:
        raise PriorError(f"{path}: the tokenizer names no BOS or EOS token to start a window with.",
                         hint="Set bos_token in the tokenizer (tokenizer.bos_token = ...) and save it again.")
    max_context = next((getattr(config, k) for k in ("n_positions", "max_position_embeddings", "n_ctx")
                        if getattr(config, k, None)), None)
    V = int(net.get_output_embeddings().weight.shape[0]) if net.get_output_embeddings() is not None \
        else int(config.vocab_size)
    prior = Prior(spec=str(path.resolve()), kind="hf", net=net, tokenizer=_HFTokenizer(tokenizer, path),
                  bos_id=int(bos), vocab_size=V, max_context=int(max_context) if max_context else None, dtype=dtype)
    prior.saw = _hf_saw(path, config, net)
    arch = {k: v for k, v in config.to_dict().items()
            if k not in ("_name_or_path", "transformers_version", "_commit_hash", "dtype", "torch_dtype")}
    prior.identity_config = {"class": type(net).__name__, "config": arch,
                              "attention": getattr(config, "_attn_implementation", None)}
    return prior


def _hf_saw(path: Path, config, net) -> dict[str, Any]:
    datasets = _card_datasets(path / "README.md")
    n_params = sum(p.numel() for p in net.parameters())
    summary = (f"Hugging Face model {path} ({config.model_type}, {n_params:,} parameters); training data: "
               + (", ".join(datasets) + " (from its model card)" if datasets else
                  "not recorded in the directory (see the model's card)")
               + ". Zero-shot for gradients and weights unless that data held serialized numbers.")
    return {"summary": summary, "model_type": config.model_type, "parameters": n_params, "datasets": datasets,
            "zero_shot": None}


def _card_datasets(readme: Path) -> list[str]:
    """The `datasets:` list of a model card's YAML front matter (no YAML parser needed for that list)."""
    if not readme.is_file():
        return []
    lines = readme.read_text(errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return []
    out, inside = [], False
    for line in lines[1:]:
        if line.strip() == "---":
            break
        if line.startswith("datasets:"):
            inside = True
            rest = line.split(":", 1)[1].strip()
            if rest:
                out += [s.strip(" '\"") for s in rest.strip("[]").split(",") if s.strip()]
        elif inside and line.lstrip().startswith("- "):
            out.append(line.lstrip()[2:].strip(" '\""))
        elif inside and line and not line.startswith(" "):
            inside = False
    return out


class _HFTokenizer:
    """A transformers tokenizer without special tokens; decode gives back exactly what encode saw."""

    def __init__(self, tokenizer, path: Path):
        self.inner = tokenizer
        digest = hashlib.sha256()
        for name in _TOKENIZER_FILES:
            if (path / name).is_file():
                digest.update(name.encode() + b"\0" + (path / name).read_bytes() + b"\0")
        self.identity = digest.hexdigest()

    def encode(self, text: str) -> list[int]:
        ids = list(self.inner.encode(text, add_special_tokens=False))
        # a SentencePiece tokenizer may put a lone space marker in front: the decoder must not need it
        while len(ids) > 1 and self.decode(ids[1:]) == text and not self.decode(ids[:1]).strip():
            ids = ids[1:]
        return ids

    def decode(self, ids: list[int]) -> str:
        return self.inner.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


# ---- identity


def _identity(prior: Prior) -> str:
    """sha256 of what decides the probabilities: kind, architecture, tokenizer, dtype and every weight."""
    import torch

    digest = hashlib.sha256()
    head = {"format": "sublora-lmgc-prior/1", "kind": prior.kind, "dtype": prior.dtype, "bos": prior.bos_id,
            "V": prior.vocab_size, "tokenizer": prior.tokenizer.identity,
            "config": prior.identity_config}
    digest.update(json.dumps(head, sort_keys=True, default=str).encode())
    for name, tensor in sorted(prior.net.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"\0{name}\0{t.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
