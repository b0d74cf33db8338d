"""Export a certified run as plain Hugging Face weights: the model the certificate is about, outside sublora.

    export_hf(run_dir, out_dir)   writes OUT/config.json + model.safetensors (the certified GPT-2, LoRA merged),
                                  OUT/tokenizer.json etc. (byte tokenizer) or OUT/sublora_tokenizer.json, and a
                                  model card README.md with the headline bound and the hashes that tie it to the run

The exported weights are those of ``load_certified``: model.slc decoded exactly as ``verify`` decodes it,
theta = theta0 + P w with the quantized w, the LoRA adapters merged into the base weights. GPT-2 ties its
LM head to the token embedding; a LoRA on the head would change the embedding too when merged, so the head
is untied first (``tie_word_embeddings: false``). With ``bound.vocab: tokenizer`` the certified predictor
renormalises over the tokenizer's ids, so the export keeps only those rows: its softmax is that predictor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from sublora.core.data.dataset import file_sha256
from sublora.core.errors import RunDirError
from sublora.core.manifest import read_json
from sublora.core.rundir import RunDir

EOT_TEXT = "<|endoftext|>"
TOKENIZER_INFO = "sublora_tokenizer.json"


def export_network(model, vocab: int | None = None):
    """The certified network as a plain transformers model: ``sublora.bounds.inference.merged_network`` (theta
    written in, LoRA merged, a LoRA'd head untied), with the head untied in any case and the config saying so.

    ``model``: a SubspaceModel over a peft-wrapped transformers causal LM (quantized hypothesis loaded).
    ``vocab``: keep only the first ``vocab`` token ids (the certified predictor under bound.vocab=tokenizer).
    """
    import torch
    from torch import nn

    from sublora.bounds.inference import merged_network

    merged = merged_network(model)
    head, embedding = merged.get_output_embeddings(), merged.get_input_embeddings()
    if head.weight is embedding.weight:  # no LoRA on the head: still tied; the export says tie_word_embeddings=false
        head.weight = nn.Parameter(head.weight.detach().clone(), requires_grad=False)
    merged.config.tie_word_embeddings = False
    if vocab is not None and vocab < head.out_features:
        with torch.no_grad():
            embedding.weight = nn.Parameter(embedding.weight[:vocab].clone(), requires_grad=False)
            embedding.num_embeddings = vocab
            head.weight = nn.Parameter(head.weight[:vocab].clone(), requires_grad=False)
            if head.bias is not None:
                head.bias = nn.Parameter(head.bias[:vocab].clone(), requires_grad=False)
            head.out_features = vocab
        merged.config.vocab_size = vocab
    return merged.eval()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (what the ByteLevel pre-tokenizer emits)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def byte_tokenizer():
    """sublora's ``bytes`` tokenizer as a Hugging Face fast tokenizer: id = the UTF-8 byte, 256 = end of text.

    A byte-level BPE with no merges: every byte is its own token, exactly as ``BytesTokenizer.encode``.
    ``<|endoftext|>`` is a special token (id 256); to tokenize that literal text as bytes, as sublora does,
    pass ``split_special_tokens=True``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: b for b, c in _bytes_to_unicode().items()}
    vocab[EOT_TEXT] = 256
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOT_TEXT, bos_token=EOT_TEXT)
    fast.add_special_tokens({"eos_token": EOT_TEXT})
    return fast


def write_tokenizer(out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """What a user needs to tokenize as the certified data was: a HF tokenizer (bytes) and sublora's record."""
    spec = meta["tokenizer"]["spec"]
    info = {"spec": spec, "vocab_size": int(meta["vocab_size"]), "eot_id": int(meta["eot_id"]),
            "eot_text": EOT_TEXT, "hf_tokenizer": False}
    if spec == "bytes":
        byte_tokenizer().save_pretrained(out)
        info["hf_tokenizer"] = True
        info["how"] = ("token id = UTF-8 byte value (0..255), 256 = end of text; AutoTokenizer.from_pretrained(DIR) "
                       "gives the same ids (split_special_tokens=True also keeps a literal '<|endoftext|>' as bytes)")
    elif spec.startswith("tiktoken:"):
        info["how"] = (f"tiktoken.get_encoding({spec.split(':', 1)[1]!r}).encode_ordinary(text); documents end with "
                       f"the end-of-text id {meta['eot_id']}")
    else:
        info["how"] = f"sublora's tokenizer {spec!r} (see `sublora plugins`)"
    (out / TOKENIZER_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def _arithmetic(cert: dict[str, Any]) -> str:
    from sublora.bounds.certificates import certified_dtype

    dtype = certified_dtype(cert)
    if dtype == "float32":
        return ""
    return (f" The certified predictor computes in {dtype} (`bound.dtype`), so the weights are stored in {dtype}, "
            f"the values it scored with; run the model in {dtype}. Other kernels round {dtype} differently: "
            "logits agree with the certified ones to that precision, not bit for bit.")


def _card(cert: dict[str, Any], manifest: dict[str, Any], cert_sha: str, tokenizer: dict[str, Any],
          vocab_rule: str, params: int, verified: bool) -> str:
    head = cert.get("headline") or {}
    checked = ("The certificate was verified at export (`sublora verify`: every field and bound recomputed from "
               "model.slc, the settings and the evidence; a random sample re-scored)." if verified else
               "The certificate was NOT verified at export (`--no-verify`).")
    if head.get("value") is not None:
        headline = (f"**{head['name']} <= {head['value']:.4f} bits per token** (target {head.get('target')}, "
                    f"alpha {head.get('alpha')}, with probability >= 1 - {cert['searches']['attempts']['delta']})")
    else:
        headline = "no headline: every candidate bound is vacuous by construction on this data"
    losses = cert.get("losses_bits_per_token", {})
    load = ("tok = AutoTokenizer.from_pretrained(DIR)\n" if tokenizer["hf_tokenizer"] else "")
    return f"""---
library_name: transformers
tags: [sublora, generalization-bound, gpt2]
---

# sublora certified model

A GPT-2 trained by sublora in a {cert.get('d')}-dimensional subspace of its {cert.get('D')} LoRA parameters,
quantized and coded into {cert['code_bits']} bits (`model.slc`), with a generalization certificate. These are
plain Hugging Face weights ({params:,} parameters, LoRA merged into the base weights, LM head untied) whose
logits are those of the certified model.{_arithmetic(cert)}

## Certificate

- headline: {headline}
- certificate sha256: `{cert_sha}` (a copy is `certificate.json` here)
- run config sha256 (manifest): `{manifest.get('config_sha256')}`
- compressed model sha256: `{cert.get('compressed_sha256')}` ({cert['code_bits']} bits; total charged
  {cert.get('total_bits')} bits)
- data: {manifest.get('data', {}).get('source')} tokenized with `{tokenizer['spec']}`, sha256
  `{manifest.get('data', {}).get('sha256')}`
- quantized model's loss: {losses.get('quantized_train')} bits/token (train), {losses.get('quantized_val')} (val)

The bound is about the smoothed predictor (1 - alpha) p + alpha / V with V = {cert.get('vocab', {}).get('V')}
({vocab_rule}); it holds for this model on the training data's distribution as described in sublora's
docs/bounds.md. {checked} Re-check it with `sublora verify RUN_DIR` on the original run.

## Use

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained(DIR)
{load}```

Tokenization: {tokenizer['how']}. End of text: id {tokenizer['eot_id']}; vocabulary {tokenizer['vocab_size']}.
"""


def export_hf(run_dir: str | Path, out_dir: str | Path, force: bool = False, verify: bool = True) -> dict[str, Any]:
    """Write the certified model of ``run_dir`` to ``out_dir`` as Hugging Face weights; return a summary.

    ``verify``: first check the certificate as ``sublora verify`` does (every field and bound recomputed, a
    random sample re-scored), so the card never repeats a number the run's files do not give.
    """
    from sublora.bounds.certificates import certified_dtype, load_certified
    from sublora.bounds.certify import vocab_record
    from sublora.core.build import as_hf
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    run_dir, out = Path(run_dir), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not force:
        raise RunDirError(f"{out} is not empty.", hint="Choose a new directory, or pass --force to overwrite it.")
    RunDir(run_dir).require(certified=True)
    checks = None
    if verify:
        from sublora.bounds.verify import verify as verify_run

        checks = verify_run(run_dir, "quick")  # raises VerificationError on an edited or damaged certificate
    model, config, data = load_certified(run_dir)  # checks model.slc against the certificate's hash
    model = as_hf(model, config, data.vocab_size, data.eot_id)  # save_pretrained: transformers' GPT-2
    cert = read_json(run_dir / "certificate.json")
    manifest = read_json(run_dir / "manifest.json")
    record = vocab_record(model, data, config)
    merged = export_network(model, vocab=record["V"] if record["rule"] == "tokenizer" else None)
    if (dtype := certified_dtype(cert)) != "float32":  # the weights the certified predictor computed with
        import torch

        merged = merged.to(getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    merged.generation_config.eos_token_id = data.eot_id
    merged.generation_config.bos_token_id = data.eot_id
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer = write_tokenizer(out, data.meta)
    shutil.copyfile(run_dir / "certificate.json", out / "certificate.json")
    cert_sha = file_sha256(run_dir / "certificate.json")
    params = sum(p.numel() for p in merged.parameters())
    rule = ("every output of the model" if record["rule"] == "model"
            else "the tokenizer's ids: the exported head keeps only those rows")
    (out / "README.md").write_text(_card(cert, manifest, cert_sha, tokenizer, rule, params, checks is not None))
    head = cert.get("headline") or {}
    return {"out": str(out), "parameters": params, "certificate_sha256": cert_sha,
            "config_sha256": manifest.get("config_sha256"), "headline": {k: head.get(k) for k in ("name", "value")},
            "tokenizer": tokenizer, "verified": checks is not None}
