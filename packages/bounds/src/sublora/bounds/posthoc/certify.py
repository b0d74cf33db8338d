"""A post-hoc bound for a local causal LM: quantize its weights, code them, score the smoothed model, certify.

    bound_model(model_dir, data, out_dir)   writes OUT/architecture.json, OUT/model.slc, OUT/evidence.npz,
                                            OUT/certificate.json (kind: posthoc); ``sublora verify OUT`` checks it

The hypothesis is the network built from architecture.json (``AutoModelForCausalLM.from_config``) with every
parameter set to the decoded content of model.slc: the model that is scored is rebuilt that way here, exactly
as verify rebuilds it. The prior pays for both files: P(h) = 2^-(L + 2 log2 L) x 2^-(A + 2 log2 A), L the bits of
model.slc, A the bits of the zlib-compressed canonical architecture JSON (two prefix-free codes, each with Kraft
sum < 1), plus bound.hyper_bits for the quantization settings tried and log2 |A| for the smoothing grid. The
weights before quantization, and however they were trained (on this data or not), cost nothing more: they
are not part of the hypothesis. The bounds, estimators, evidence and headline are sublora's (docs/bounds.md).
"""

from __future__ import annotations

import gc
import json
import math
import resource
import time
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from sublora.bounds.posthoc.settings import PosthocSettings
from sublora.core.errors import ConfigError, RunDirError, VerificationError
from sublora.core.rundir import staged

KIND = "posthoc"
ARCH_FILE = "architecture.json"
VOLATILE = ("transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures", "_commit_hash",
            "_attn_implementation_autoset", "output_attentions", "output_hidden_states", "return_dict")
LOSS_BLOCKS = 16  # blocks of the informational before/after-quantization losses (seed bound.seed + 2)


def scoring_config(settings: PosthocSettings, block_size: int):
    """What sublora's scorer, estimators and checks read of a run config: bound.* and model.block_size."""
    return SimpleNamespace(bound=settings.bound, model=SimpleNamespace(block_size=block_size))


def architecture(net) -> dict[str, Any]:
    """The network's config without what does not change the function (versions, paths, dtypes)."""
    config = net.config.to_dict()
    return {k: v for k, v in sorted(config.items()) if k not in VOLATILE}


def architecture_bytes(arch: dict[str, Any]) -> bytes:
    return json.dumps(arch, sort_keys=True, separators=(",", ":")).encode()


def architecture_bits(data: bytes) -> int:
    """Bits of the architecture's code word: its canonical JSON compressed with zlib (level 9), whole bytes."""
    return 8 * len(zlib.compress(data, 9))


def build_from_architecture(arch: dict[str, Any]):
    """The network architecture.json describes, float32, eval mode (its weights are then overwritten)."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    fields = dict(arch)
    try:
        config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    except (KeyError, ValueError) as exc:
        raise VerificationError(f"{ARCH_FILE} does not describe a transformers model: {exc}.") from exc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return net.eval()


def context_length(net) -> int | None:
    c = net.config
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        if isinstance(getattr(c, key, None), int):
            return int(getattr(c, key))
    return None


def posthoc_fields(settings: PosthocSettings, block_size: int, arch_bits: int, code_bits: int, parameters: int,
                   vocab: dict[str, Any], evidence, attempts: dict[str, Any]) -> dict[str, Any]:
    """Every certificate field that follows from the two files, the settings, the evidence and the ledger:
    what ``bound_model`` writes and ``verify`` recomputes, from this one function."""
    from sublora.bounds.certificates import compute_bounds, headline_bound
    from sublora.bounds.prior import complexity as make_complexity

    config = scoring_config(settings, block_size)
    b = settings.bound
    delta = attempts["delta_per_attempt"]
    complexity = make_complexity(code_bits, hyper_bits=b.hyper_bits, alphas=b.alphas,
                                 extra={"architecture": arch_bits + 2 * math.log2(arch_bits)})
    t, d = evidence.tokens, evidence.documents
    return {
        "code_bits": code_bits,
        "architecture_bits": arch_bits,
        "prefix_bits": complexity.prefix_bits,
        "extra_bits": complexity.extra_bits,
        "extra_breakdown": complexity.extra_breakdown,
        "total_bits": complexity.total_bits,
        "parameters": parameters,
        "bits_per_parameter": code_bits / parameters,
        "vocab_size": evidence.vocab_size,
        "vocab": vocab,
        "evaluation": {
            "token_level": {"n": t.n, "block_size": t.block_size, "blocks_evaluated": t.blocks,
                            "total_blocks": t.total_blocks, "sampled": t.sampled, "seed": b.seed},
            "document_level": {"N": d.N, "n": d.n, "tokens_scored": d.tokens_scored, "seed": b.seed + 1,
                               "sampled_indices": [int(i) for i in d.indices]},
        },
        "searches": {"attempts": attempts},
        "bounds": compute_bounds(config, evidence, complexity, delta),
        "headline": headline_bound(config, evidence, complexity, delta),
    }


@torch.inference_mode()
def mean_loss_bits(predictor, data, block_size: int, seed: int, blocks: int = LOSS_BLOCKS) -> float:
    """Plain (unsmoothed) cross-entropy in bits per token on ``blocks`` seeded training blocks: informational."""
    from sublora.bounds.evaluate import token_draw

    total = (len(data.train) - 1) // block_size
    idx = token_draw(total, min(blocks, total), seed)
    window = torch.from_numpy(np.asarray(data.train[idx[:, None] * block_size + np.arange(block_size + 1)],
                                         dtype=np.int64))
    logits = predictor(window[:, :-1]).float()
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), window[:, 1:].reshape(-1))
    return float(ce) / math.log(2)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def bound_model(model_dir: str | Path, data: str | Path, out_dir: str | Path,
                settings: PosthocSettings | None = None, tokenizer: str | None = None,
                data_overrides: dict[str, Any] | None = None, force: bool = False, charge: bool = False,
                trust_tokenizer: bool = False, progress=None) -> dict[str, Any]:
    """Quantize + code ``model_dir``'s weights, score the quantized model on ``data``, write OUT/certificate.json."""
    from sublora.core.runlock import run_lock

    out = Path(out_dir)
    if (out / "certificate.json").exists() and not force:
        raise RunDirError(f"{out} already holds a certificate.",
                          hint="Use `sublora verify` to check it, or pass --force to compute it again.")
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out, "sublora bound-model"):
        return _bound_model(Path(model_dir), data, out, settings or PosthocSettings(), tokenizer, data_overrides,
                            charge, trust_tokenizer, progress)


def _no_progress(_: str):
    from contextlib import nullcontext

    return nullcontext(None)


def _bound_model(model_dir: Path, data_arg, out: Path, settings: PosthocSettings, tokenizer, data_overrides,
                 charge: bool, trust_tokenizer: bool, progress) -> dict[str, Any]:
    from sublora.bounds.attempts import hypothesis_sha256, planned_attempts, record_attempt
    from sublora.bounds.certificates import FORMAT, save_evidence
    from sublora.bounds.certify import _collect_evidence, check_evaluation_sizes, vocab_record
    from sublora.bounds.posthoc.compress import quantize_and_write, read_into, tensor_list
    from sublora.bounds.posthoc.data import check_tokenizer, open_data
    from sublora.bounds.posthoc.predictor import CausalLMPredictor, load_causal_lm
    from sublora.core.data.dataset import file_sha256
    from sublora.core.manifest import write_json
    from sublora.core.registry import registry

    progress = progress or _no_progress
    t0 = time.perf_counter()
    net = load_causal_lm(model_dir)  # refuses a directory that is not a causal LM
    with progress("prepare data") as bar:
        data = open_data(data_arg, tokenizer, data_overrides, progress=bar)
    token_check = check_tokenizer(model_dir, data, trust_tokenizer)  # refuses a tokenizer mismatch
    context = context_length(net)
    block = settings.block_size or min(context or 1024, 1024)
    if context is not None and block > context:
        raise ConfigError(f"block_size={block} exceeds the model's context ({context} positions).",
                          hint=f"Set --posthoc.block_size to at most {context}.")
    config = scoring_config(settings, block)
    check_evaluation_sizes(config, data)
    vocab = vocab_record(CausalLMPredictor(net), data, config)  # refuses fewer outputs than the tokenizer's ids
    planned_attempts(out, settings, charge)

    coded = tensor_list(net)
    arch = architecture(net)
    arch_data = architecture_bytes(arch)
    original_loss = mean_loss_bits(CausalLMPredictor(net), data, block, settings.bound.seed + 2)
    coder = registry("coder").config(settings.bound.coder, settings.bound.coder_options).build()
    coder_checks = coder.check_run_data(data.record())  # an LM prior that saw this data is refused
    with staged(out / "model.slc", out / "evidence.npz", out / ARCH_FILE) as (tmp_model, tmp_evidence, tmp_arch):
        t1 = time.perf_counter()
        with progress("quantize and code, tensor by tensor") as bar:
            stats = quantize_and_write(net, settings, coder, tmp_model, bar)
        t_code = time.perf_counter() - t1
        del net
        gc.collect()
        # the certified model: rebuilt from the architecture, every parameter decoded from the file (as verify does)
        net = build_from_architecture(arch)
        if tensor_list(net) != coded:
            raise VerificationError("The network rebuilt from its architecture has other tensors than the loaded "
                                    "one: the file could not be decoded into it.",
                                    hint="Report this model type; bound-model is tested on gpt2, gpt_neox and llama.")
        t1 = time.perf_counter()
        read_into(net, tmp_model, settings.group_size, coder)
        t_decode = time.perf_counter() - t1
        predictor = CausalLMPredictor(net)
        quantized_loss = mean_loss_bits(predictor, data, block, settings.bound.seed + 2)

        hypothesis = hypothesis_sha256(tmp_model, arch_data)  # another model into this OUT is another attempt
        planned_attempts(out, settings, charge, hypothesis)
        attempts = record_attempt(out, settings, hypothesis)
        t1 = time.perf_counter()
        evidence = _collect_evidence(predictor, data, config, vocab["V"], progress)
        t_score = time.perf_counter() - t1
        save_evidence(tmp_evidence, evidence)
        tmp_arch.write_bytes(arch_data)
        fields = posthoc_fields(settings, block, architecture_bits(arch_data), stats["code_bits"],
                                stats["parameters"], vocab, evidence, attempts)

    config_file = model_dir / "config.json"
    certificate = {
        "format": FORMAT,
        "kind": KIND,
        "model": {"dir": str(model_dir.resolve()), "model_type": arch.get("model_type"),
                  "config_sha256": file_sha256(config_file), "parameters": stats["parameters"],
                  "note": "where the weights came from; the hypothesis is architecture.json + model.slc"},
        "architecture_file": ARCH_FILE,
        "architecture_sha256": file_sha256(out / ARCH_FILE),
        "tensors": coded,
        "entries": stats["entries"],
        "data": {"dir": str(data.path.resolve()), "sha256": data.meta["sha256"], "tokenizer": data.meta["tokenizer"],
                 "source": data.meta["source"]["spec"], "vocab_size": data.vocab_size, "eot_id": data.eot_id},
        "tokenizer_check": token_check,
        "settings": settings.model_dump(mode="json"),
        **({"coder_checks": coder_checks} if coder_checks is not None else {}),
        "sample_independence": (f"the subsample terms assume the weights were fixed without knowledge of the "
                                f"evaluation sample, drawn with bound.seed={settings.bound.seed} (docs/posthoc.md: use "
                                "a seed drawn after the model was fixed)"),
        "block_size": block,
        "compressed_file": "model.slc",
        "compressed_sha256": file_sha256(out / "model.slc"),
        "evidence_file": "evidence.npz",
        "evidence_sha256": file_sha256(out / "evidence.npz"),
        **fields,
        "losses_bits_per_token": {"original_train": original_loss, "quantized_train": quantized_loss,
                                  "blocks": LOSS_BLOCKS, "seed": settings.bound.seed + 2},
        "resources": {"seconds": {"quantize_and_code": round(t_code, 2), "decode": round(t_decode, 2),
                                  "score": round(t_score, 2), "total": round(time.perf_counter() - t0, 2)},
                      "peak_rss_mb": round(_peak_rss_mb(), 1), "threads": torch.get_num_threads()},
    }
    write_json(out / "certificate.json", certificate)
    return certificate
