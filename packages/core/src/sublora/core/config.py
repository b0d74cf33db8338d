"""The run config: one typed tree, loaded from YAML plus dotted overrides.

Every section rejects unknown keys and wrong types; errors name the field
(``train.lr: Input should be greater than 0``). The resolved config is written
into every run directory, so a result can be traced to exactly what made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sublora.core.component import validation_message
from sublora.core.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataConfig(Section):
    source: str = Field("pystdlib", description="Data source spec (see `sublora plugins`).")
    source_options: dict[str, Any] = Field(default_factory=dict)
    tokenizer: str = Field("bytes", description="Tokenizer spec: 'bytes' or 'tiktoken:<encoding>'.")
    tokenizer_options: dict[str, Any] = Field(default_factory=dict)
    dir: Path | None = Field(None, description="Prepared data directory; default: a cache dir keyed by this section.")
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5, description="Fraction of documents held out for validation.")
    split_seed: int = Field(1234, description="Seed of the train/val document split.")
    max_documents: int | None = Field(None, ge=2, description="Use only the first N documents (smoke runs).")


PRESETS: dict[str, dict[str, int]] = {
    # name: GPT-2 shape. 'tiny'/'mini' are CPU sizes; the rest are the GPT-2 family.
    "tiny": {"n_layer": 2, "n_head": 2, "n_embd": 64},
    "mini": {"n_layer": 4, "n_head": 4, "n_embd": 128},
    "small": {"n_layer": 12, "n_head": 12, "n_embd": 768},
    "medium": {"n_layer": 24, "n_head": 16, "n_embd": 1024},
    "large": {"n_layer": 36, "n_head": 20, "n_embd": 1280},
    "xl": {"n_layer": 48, "n_head": 25, "n_embd": 1600},
}


class ModelConfig(Section):
    preset: Literal["tiny", "mini", "small", "medium", "large", "xl"] = "mini"
    n_layer: int | None = Field(None, ge=1, description="Overrides the preset.")
    n_head: int | None = Field(None, ge=1)
    n_embd: int | None = Field(None, ge=8)
    block_size: int = Field(128, ge=2, description="Context length in tokens.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pretrained: Path | None = Field(None, description="Local directory of a pretrained GPT-2 (from_pretrained).")
    init_seed: int = Field(0, description="Seed of the random base weights and LoRA init (theta0).")
    # issue 14.1 (train speed): which GPT-2 implementation computes the model (a `sublora.models` plugin)
    impl: str = Field("hf", description="GPT-2 implementation: 'hf' (transformers + peft) or 'lean' (sublora's own: "
                      "the same tensors and logits to float rounding, faster training).")

    def shape(self) -> dict[str, int]:
        base = dict(PRESETS[self.preset])
        for key in ("n_layer", "n_head", "n_embd"):
            if getattr(self, key) is not None:
                base[key] = getattr(self, key)
        if base["n_embd"] % base["n_head"]:
            raise ConfigError(f"model.n_embd ({base['n_embd']}) must be divisible by model.n_head ({base['n_head']}).")
        return base


class LoraConfig(Section):
    r: int = Field(4, ge=1, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    attention: bool = Field(True, description="LoRA on the attention projections (c_attn).")
    attention_output: bool = Field(False, description="LoRA on the attention output projection.")
    mlp: bool = Field(False, description="LoRA on the MLP (c_fc, c_proj).")
    head: bool = Field(True, description="LoRA on the LM head.")

    @model_validator(mode="after")
    def _some_target(self) -> "LoraConfig":
        if not (self.attention or self.attention_output or self.mlp or self.head):
            raise ValueError("at least one of attention, attention_output, mlp, head must be true")
        return self


class SubloraConfig(Section):
    projector: str = Field("rdkron:qr", description="Projector spec, e.g. 'rdkron:qr' (the reference default), 'rdkron', 'dense'.")
    projector_options: dict[str, Any] = Field(default_factory=dict)
    intrinsic_dim: int = Field(4000, ge=1, description="d: length of the trained vector w.")
    seed: int = Field(0, description="Seed of the projector P.")


class TrainConfig(Section):
    max_steps: int = Field(2000, ge=1, description="Optimizer steps (the main job's 2,000 sit on the measured time-vs-bound front, docs/results.md).")
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    lr: float = Field(5e-3, gt=0)
    min_lr: float = Field(5e-4, ge=0)
    warmup_steps: int = Field(50, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping.")
    eval_interval: int = Field(500, ge=1)
    eval_batches: int = Field(20, ge=1)
    log_interval: int = Field(25, ge=1)
    checkpoint_interval: int = Field(500, ge=1, description="Steps between resumable checkpoints.")
    seed: int = Field(0, description="Seed of batch sampling.")
    threads: int = Field(2, ge=1, description="torch threads (recorded: results depend on it bit-wise).")
    time_limit: float | None = Field(None, gt=0, description="Stop after this many seconds (checkpointed).")
    collect_grads: int | None = Field(None, ge=1, description="Save the gradients of w and of the LoRA tensors "
                                      "every N optimizer steps into RUN/grads (sublora-grads/1, docs/lmgc.md); "
                                      "does not change training.")
    # issue 12.1 / 12.3 (DDP training, GPU path): where a run trains; the process count is not config
    # (`sublora train --nproc N` or torchrun): a run may resume with another one.
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Training device: auto = cuda when "
                                                   "available, else cpu (recorded in the manifest).")
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="Compute dtype of the training "
                                                          "forward (autocast; w stays float32): auto = bfloat16 "
                                                          "on a CUDA GPU that supports it, float32 elsewhere.")
    dist_timeout: float = Field(600.0, gt=0, description="Seconds a process of a multi-process run waits for "
                                "the others before stopping with an error.")

    @model_validator(mode="after")
    def _lr_order(self) -> "TrainConfig":
        if self.min_lr > self.lr:
            raise ValueError("min_lr must not exceed lr")
        return self


class BoundSettings(Section):
    quantizer: str = Field("kmeans", description="Quantizer spec: 'kmeans' (seeded 1-D k-means) or 'uniform' "
                           "(the reference's equal-width bins; costs ~0.5 bits/token more on the main job).")
    levels: int = Field(11, ge=2, le=255, description="Codebook size (centroids) of the quantizer when "
                        "levels_grid is empty; otherwise it must be one of the grid's candidates.")
    levels_grid: list[int] = Field(default_factory=lambda: [11, 16, 24], description="Candidate codebook sizes: "
                                   "each is quantized (+ QAT), coded and scored on search_blocks training blocks; the "
                                   "one with the smallest estimated token Azuma bound is kept. Free: the file stores "
                                   "its codebook size, so the prior covers the choice (docs/bounds.md section 3). "
                                   "Empty = use `levels` only (see docs/tighter_certificates.md).")
    search_blocks: int = Field(128, ge=1, description="Training blocks (seeded, with replacement) each levels_grid "
                               "candidate is scored on to estimate its bound.")
    qat_steps: int = Field(100, ge=0, description="Quantization-aware fine-tuning steps after quantizing (0 = off): "
                           "w and the codebook are trained through the rounding (straight-through) on training "
                           "batches, then re-quantized; a quantizer that declares fixed_codebook keeps its codebook.")
    qat_lr: float = Field(1e-4, gt=0, description="Adam learning rate of the quantization-aware fine-tuning.")
    qat_batch_size: int = Field(16, ge=1, description="Training sequences per quantization-aware fine-tuning step.")
    quantizer_options: dict[str, Any] = Field(default_factory=dict)
    coder: str = Field("shortest", description="Coder spec: 'shortest' (of arithmetic/adaptive), 'arithmetic', "
                       "'adaptive', or 'lm' (sublora-lmgc: a language model prior, checked independent of the data).")
    coder_options: dict[str, Any] = Field(default_factory=dict)
    estimators: list[str] = Field(default_factory=lambda: ["subsampling", "azuma", "freedman", "pacbayes"])
    estimator_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    alphas: list[float] = Field(default_factory=lambda: [1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5])
    delta: float = Field(0.05, gt=0, lt=1)
    hyper_bits: float = Field(7.0, ge=0, description="Bits paid for hyperparameters chosen after seeing data "
                              "(a union bound over 2^hyper_bits configurations; say which in hyper_bits_cover).")
    hyper_bits_cover: str = Field(
        "up to 128 configurations tried on this data before this certificate, counting this run's model, subspace "
        "and training settings, coders or LM priors tried on its w, and any certification of such a run in another "
        "directory (the ledger sees only this one; the reference's 7 bits)",
        description="What hyper_bits pays for, written into the certificate: sublora cannot check it, so state it.")
    vocab: Literal["model", "tokenizer"] = Field(
        "model", description="V of the smoothed predictor (docs/bounds.md section 2): 'model' = every output of the "
        "model's output layer; 'tokenizer' = the model's distribution renormalised over the tokenizer's ids.")
    headline_target: str = Field(
        "token_bpd", description="The one quantity the headline bounds; only results for this target compete "
        "(docs/bounds.md section 9).")
    doc_samples: int = Field(50, ge=1, description="Documents drawn (with replacement) for the document-level bound.")
    doc_stride: int | None = Field(None, ge=1, description="Sliding-window stride for long documents "
                                   "(default: block_size, i.e. non-overlapping windows; smaller = more context, more compute).")
    token_blocks: int | None = Field(8000, ge=1, description="Blocks drawn (with replacement) for the token-level "
                                     "bounds; 'all' (or null) = score every block once (no subsampling term).")
    topk: list[int] = Field(default_factory=lambda: [1, 10, 100])
    batch_size: int = Field(32, ge=1)
    # issue 14.2: bf16 arithmetic scores ~1.4x faster on a CPU with AVX512-BF16 (far more on a GPU)
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Arithmetic of the certified predictor: the merged network's weights and "
        "activations when scoring (log-probabilities and every statistic stay float32). Part of the hypothesis "
        "the certificate names; verify recomputes in it (docs/bounds.md section 2).")
    seed: int = Field(0, description="Seed of the evaluation subsample and of the quantizer.")

    @field_validator("alphas")
    @classmethod
    def _alphas_open_interval(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("give at least one alpha")
        bad = [a for a in v if not 0.0 < a < 1.0]
        if bad:
            raise ValueError(f"every alpha must lie in (0, 1); got {bad}")
        return sorted(set(v))

    # issue 12.2 / 14.2 (score every block): `token_blocks: all` is spelled null in the resolved config
    @field_validator("token_blocks", mode="before")
    @classmethod
    def _all_blocks(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip().lower() == "all" else v

    @field_validator("headline_target")
    @classmethod
    def _known_target(cls, v: str) -> str:
        import re

        if v.startswith("sequence_"):
            raise ValueError(f"{v!r} cannot be the headline: sequence-level results rest on an assumption (i.i.d. "
                             "training blocks) and never compete (docs/bounds.md section 7)")
        if not re.fullmatch(r"token_bpd|document_bpd|document_top\d+", v):
            raise ValueError(f"unknown target {v!r}; use token_bpd, document_bpd or document_top<k>")
        return v

    @field_validator("levels_grid")
    @classmethod
    def _levels_in_range(cls, v: list[int]) -> list[int]:
        bad = [n for n in v if not 2 <= n <= 255]
        if bad:
            raise ValueError(f"every candidate must lie in [2, 255] (the file stores 1..255 centroids); got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"candidates must be distinct (a repeat costs bits and tries nothing new); got {v}")
        return list(v)

    @model_validator(mode="before")
    @classmethod
    def _levels_alone_means_no_search(cls, data: Any) -> Any:
        """`levels: 7` without a levels_grid (a YAML file, an override, a run from before the search) means
        that one codebook size: no search."""
        if isinstance(data, dict) and "levels" in data and "levels_grid" not in data:
            data = {**data, "levels_grid": []}
        return data

    @model_validator(mode="after")
    def _levels_in_grid(self) -> "BoundSettings":
        if self.levels_grid and self.levels not in self.levels_grid:
            raise ValueError(f"levels={self.levels} is not among levels_grid={self.levels_grid}, which decides the "
                             f"codebook size: set levels_grid to [] to use levels={self.levels} alone, "
                             "or add it to the grid")
        return self


class RunConfig(Section):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    sublora: SubloraConfig = Field(default_factory=SubloraConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    bound: BoundSettings = Field(default_factory=BoundSettings)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        try:
            config = cls.model_validate(data)
            config.model.shape()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"Invalid config: {validation_message(exc, model=cls)}.",
                              hint="Fix the field in the YAML file or the --section.field=value override.") from exc
        from sublora.core.validate import validate_components  # lazy: it loads the registry

        validate_components(config)  # every component spec and its options, before any work
        return config

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
