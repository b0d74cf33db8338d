"""The settings of a post-hoc bound: sublora's bound settings plus how a whole model is quantized.

The quantizer, its codebook size, the coder, the estimators, the smoothing grid, delta and the evaluation
sample are ``bound.*`` (``sublora.core.config.BoundSettings``), as for a sublora run. A post-hoc bound quantizes
fixed weights once: no levels search, no quantization-aware fine-tuning.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sublora.core.config import BoundSettings
from sublora.core.errors import ConfigError

HYPER_COVER = ("up to 128 configurations tried on this data before this certificate, counting quantization "
               "settings (quantizer, levels, group size, coder), evaluation seeds, block sizes, estimators and models "
               "certified into other output directories (each OUT's ledger sees only itself)")


def _bound_defaults() -> BoundSettings:
    return BoundSettings(quantizer="uniform", levels=16, levels_grid=[], qat_steps=0, coder="arithmetic",
                         hyper_bits_cover=HYPER_COVER)


class PosthocSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    bound: BoundSettings = Field(default_factory=_bound_defaults, description="Quantizer (bound.quantizer, "
                                 "bound.levels: matrices), coder, estimators, alphas, delta and evaluation sample.")
    vector_levels: int = Field(255, ge=2, le=255, description="Codebook size for 1-D tensors (norm gains, biases): "
                               "few values, where a coarse grid costs loss and saves almost no bits.")
    group_size: int | None = Field(None, ge=16, description="Per-group quantization: each tensor is cut into groups "
                                   "of this many values (row-major), each with its own codebook (an entry of "
                                   "model.slc); null = one codebook per tensor.")
    block_size: int | None = Field(None, ge=2, description="Context of the token-level and document-level scoring; "
                                   "default min(the model's context, 1024).")

    @field_validator("bound")
    @classmethod
    def _no_search(cls, v: BoundSettings) -> BoundSettings:
        if v.levels_grid or v.qat_steps:
            raise ValueError("a post-hoc bound quantizes fixed weights once: set bound.levels_grid=[] and "
                             "bound.qat_steps=0 (choose bound.levels instead)")
        if v.dtype != "float32":
            raise ValueError(f"bound.dtype={v.dtype}: post-hoc certificates score the model in float32 (set "
                             "bound.dtype=float32); bfloat16 scoring is an option of `sublora bound`")
        return v

    @property
    def delta(self) -> float:  # the attempts ledger reads it
        return self.bound.delta

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any]) -> "PosthocSettings":
        """From dotted overrides: ``bound.levels=8``, ``vector_levels=64``, ``group_size=1024``..."""
        from sublora.core.component import validation_message
        from sublora.core.overrides import apply_overrides

        base = cls().model_dump(mode="json")
        bound_keys = {k for k in overrides if k.startswith("bound.")}
        if "bound.levels" in bound_keys:
            overrides = {**overrides, "bound.levels_grid": overrides.get("bound.levels_grid", [])}
        try:
            settings = cls.model_validate(apply_overrides(base, overrides))
        except Exception as exc:
            raise ConfigError(f"Invalid post-hoc settings: {validation_message(exc)}.",
                              hint="Fix the --bound.* / --posthoc.* option.") from exc
        from sublora.core.config import RunConfig
        from sublora.core.validate import validate_components

        validate_components(RunConfig(bound=settings.bound))  # quantizer, coder, estimators: specs and options
        return settings
