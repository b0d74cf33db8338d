"""Tiny priors for the LM-GC coding tests, built once per test process (cached), offline.

- ``text_prior()``: a sublora run trained a few steps on a few stdlib modules (byte tokenizer,
  context 32, one thread): a zero-shot prior for numbers.
- ``numbers_prior()``: another run, trained on a folder that says it holds serialized numbers
  (the lmgc_corpus.json marker): a different prior, and not zero-shot.
- ``hf_prior_dir()``: a tiny GPT2LMHeadModel and a byte-level BPE tokenizer trained on hex text
  by the `tokenizers` library, saved with save_pretrained (no download).
"""

from __future__ import annotations

import functools
import json
import sysconfig
import tempfile
from pathlib import Path

TINY = {
    "data": {"source": "text", "max_documents": None},
    "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.0},
    "sublora": {"intrinsic_dim": 64, "projector": "rdkron"},
    "train": {"max_steps": 6, "batch_size": 2, "warmup_steps": 2, "eval_interval": 3, "eval_batches": 1,
              "log_interval": 2, "checkpoint_interval": 3, "threads": 1},
}


def _train(corpus: Path, out: Path, seed: int = 0, impl: str = "hf") -> Path:
    import copy

    from sublora.core.config import RunConfig
    from sublora.core.train import train

    data = copy.deepcopy(TINY)
    data["data"]["source_options"] = {"path": str(corpus)}
    data["sublora"]["seed"] = seed
    data["model"]["impl"] = impl
    train(RunConfig.from_dict(data), out)
    return out


@functools.lru_cache(maxsize=None)
def text_prior(impl: str = "hf") -> Path:
    root = Path(tempfile.mkdtemp(prefix="lmgc-text-prior-"))
    corpus = root / "corpus"
    corpus.mkdir()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("abc.py", "bisect.py", "colorsys.py", "keyword.py", "fnmatch.py", "heapq.py"):
        (corpus / f"{name}.txt").write_text((stdlib / name).read_text())
    return _train(corpus, root / "run", impl=impl)


@functools.lru_cache(maxsize=None)
def numbers_prior() -> Path:
    import numpy as np

    from sublora.lmgc.serialize import serialize_stream

    root = Path(tempfile.mkdtemp(prefix="lmgc-numbers-prior-"))
    corpus = root / "corpus"
    corpus.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        raw = (rng.standard_normal(512) * 1e-3).astype("<f4").tobytes()
        (corpus / f"grads_{i}.txt").write_text("\n".join(serialize_stream(raw, "hex-space", 4)))
    (corpus / "lmgc_corpus.json").write_text(json.dumps({"describe": "random normal floats, hex-space"}))
    return _train(corpus, root / "run", seed=1)


@functools.lru_cache(maxsize=None)
def hf_prior_dir() -> Path:
    import numpy as np
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from sublora.lmgc.serialize import serialize_stream

    root = Path(tempfile.mkdtemp(prefix="lmgc-hf-prior-"))
    rng = np.random.default_rng(2)
    texts = serialize_stream((rng.standard_normal(2048) * 1e-2).astype("<f4").tobytes(), "hex-space", 4)
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(texts, vocab_size=300, min_frequency=2, special_tokens=["<|endoftext|>"],
                            show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tokenizer.save_pretrained(root)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(root)
    (root / "README.md").write_text("---\ndatasets:\n- random-hex-floats\n---\n# a test model\n")
    return root
