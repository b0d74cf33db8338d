"""The finetuning config: one typed tree, as the run config (unknown keys and wrong types refused).

``lora`` and ``sublora`` are pretraining's own sections; ``bound`` is pretraining's
``BoundSettings`` with the defaults of example-level bounds (docs/finetune.md).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sublora.core.config import BoundSettings, LoraConfig, SubloraConfig
from sublora.core.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class TaskSection(_Section):
    spec: str = Field("stdlib-packages", description="Task spec: stdlib-packages, csv:PATH, jsonl:PATH, hf:NAME, "
                      "glue:cola, glue:qqp (sublora.core.finetune.tasks).")
    options: dict[str, Any] = Field(default_factory=dict, description="Task options (TaskOptions).")


class BaseSection(_Section):
    base: str = Field("tiny", description="A GPT-2 preset (random init: tiny, mini, ...), a local pretrained Hugging "
                      "Face directory, or a sublora run directory (its certified model if it has one, else its best "
                      "checkpoint, LoRA merged).")
    block_size: int = Field(64, ge=2, description="Tokens per example (longer texts are cut).")
    init_seed: int = Field(0, description="Seed of a random base, the LoRA init and the head init (theta0).")
    tokenizer: str | None = Field(None, description="Tokenizer spec; default: the run's for a run directory, "
                                  "tiktoken:gpt2 for a pretrained directory, bytes for a preset.")
    pooling: str = Field("mean", pattern="^(mean|last)$", description="Features of an example: the mean of the "
                         "final hidden states over its tokens, or the last token's.")


class FinetuneTrainSection(_Section):
    max_steps: int = Field(800, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-2, gt=0)
    min_lr: float = Field(1e-3, ge=0)
    warmup_steps: int = Field(30, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping.")
    eval_interval: int = Field(200, ge=1)
    eval_examples: int = Field(512, ge=1, description="Examples of each split in the periodic accuracy estimate.")
    seed: int = Field(0, description="Seed of batch sampling.")
    threads: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _lr_order(self) -> FinetuneTrainSection:
        if self.min_lr > self.lr:
            raise ValueError("min_lr must not exceed lr")
        return self


def default_bound() -> BoundSettings:
    """Example-level bounds: the 0-1 error (top-1) by the subsampling (Occam) and PAC-Bayes kl estimators."""
    return BoundSettings(levels=11, levels_grid=[], qat_steps=0, estimators=["subsampling", "pacbayes:kl"],
                         alphas=[0.01, 0.1, 0.5], topk=[1], headline_target="document_top1", doc_samples=4000,
                         token_blocks=None, hyper_bits=7.0,
                         hyper_bits_cover="up to 128 configurations tried on this task before this certificate, "
                                          "counting base, subspace, training, quantization and bound settings of "
                                          "finetuning runs in other directories (each run's ledger sees only itself)")


class FinetuneConfig(_Section):
    task: TaskSection = Field(default_factory=TaskSection)
    model: BaseSection = Field(default_factory=BaseSection)
    lora: LoraConfig = Field(default_factory=lambda: LoraConfig(head=False, mlp=True))
    sublora: SubloraConfig = Field(default_factory=lambda: SubloraConfig(intrinsic_dim=500))
    train: FinetuneTrainSection = Field(default_factory=FinetuneTrainSection)
    bound: BoundSettings = Field(default_factory=default_bound)

    @model_validator(mode="after")
    def _classification_bounds(self) -> FinetuneConfig:
        b = self.bound
        if b.qat_steps or b.levels_grid:
            raise ValueError("bound.qat_steps and bound.levels_grid are not supported by finetuning: set "
                             "bound.qat_steps=0 and bound.levels_grid=[] (one codebook size, bound.levels)")
        if b.dtype != "float32":
            raise ValueError(f"bound.dtype={b.dtype}: finetuning certificates score in float32 (set bound.dtype=float32); "
                             "bfloat16 scoring is an option of `sublora bound` for pretraining runs")
        if not (b.headline_target == "document_bpd" or b.headline_target.startswith("document_top")):
            raise ValueError(f"bound.headline_target={b.headline_target!r}: an example-level target is needed "
                             "(document_top1 = the classification error, or document_bpd)")
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        from sublora.core.component import validation_message

        data = dict(data)
        bound = data.get("bound")
        if isinstance(bound, dict):  # the example-level defaults, then what was given
            data["bound"] = {**default_bound().model_dump(mode="json"), **bound}
        lora = data.get("lora")
        if isinstance(lora, dict):
            data["lora"] = {"head": False, "mlp": True, **lora}
        sub = data.get("sublora")
        if isinstance(sub, dict):
            data["sublora"] = {"intrinsic_dim": 500, **sub}
        try:
            config = cls.model_validate(data)
        except Exception as exc:
            raise ConfigError(f"Invalid finetuning config: {validation_message(exc)}.",
                              hint="Fix the field in the YAML file or the --section.field=value override.") from exc
        if config.lora.head:
            raise ConfigError("lora.head=true: the language-model head is not used by a classifier.",
                              hint="Drop --lora.head (the classification head is trained inside the subspace).")
        _validate_components(config)
        from sublora.core.finetune.tasks import parse_task

        parse_task(config.task.spec)  # an unknown task is named at config load, before any heavy import
        return config

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _validate_components(config: FinetuneConfig) -> None:
    """Every component spec and its options, before any work, errors naming the field (as the run config)."""
    from sublora.core.validate import Use, _check, estimator_family

    s, b = config.sublora, config.bound
    uses = [Use("projector", s.projector, "sublora.projector", s.projector_options, "sublora.projector_options"),
            Use("coder", b.coder, "bound.coder", b.coder_options, "bound.coder_options"),
            Use("quantizer", b.quantizer, "bound.quantizer", {"levels": b.levels, **b.quantizer_options},
                "bound.quantizer_options", (("levels", "bound.levels"),))]
    uses += [Use("bound", spec, f"bound.estimators[{i}]", b.estimator_options.get(estimator_family(spec)) or {},
                 f"bound.estimator_options.{estimator_family(spec)}") for i, spec in enumerate(b.estimators)]
    if config.model.tokenizer is not None:
        uses.append(Use("tokenizer", config.model.tokenizer, "model.tokenizer", {}, "model.tokenizer"))
    for use in uses:
        _check(use)
