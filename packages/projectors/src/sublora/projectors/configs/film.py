"""Config of the FiLM projector (no torch import)."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field, field_validator

from sublora.projectors.configs.blocks import RandomBlockConfig

#: the reference's filter (norm, bn, fc, classifier) plus GPT-2's LayerNorm names (ln_1, ln_2, ln_f);
#: fc only as a whole name component, so GPT-2's MLP (mlp.c_fc) is not taken for a classifier
DEFAULT_PATTERNS: tuple[str, ...] = ("norm", "bn", r"\bfc\b", "classifier", "ln_")


class FilmConfig(RandomBlockConfig):
    """Dense projection onto the normalization/classifier tensors only; variant ``rdkron`` adds rdkron:qr.

    ``matrix`` picks the random block on the matching rows: 'dense' (the reference; ``chunk_size`` and
    ``cache_mb`` as the dense projector) or 'fastfood' (O(|S| log d) per call, for large |S|).
    """

    description: ClassVar[str] = (
        "Dense Gaussian P (or Fastfood with matrix=fastfood) on the coordinates of tensors whose names match "
        "`patterns` (norm, bn, fc, classifier, ln_), zero elsewhere; O(|S| d) (fastfood: O(|S| log d)). Variant rdkron: (P_kron + P_film) / sqrt(2) over all "
        "of theta, P_kron = rdkron:qr (P_kron alone when no tensor matches)."
    )
    implementation: ClassVar[str] = "sublora.projectors.film:FilmProjector"
    variants: ClassVar[tuple[str, ...]] = ("rdkron",)
    default_variant: ClassVar[str | None] = None  # None: the FiLM block alone

    patterns: tuple[str, ...] = Field(
        DEFAULT_PATTERNS,
        min_length=1,
        description="Regular expressions searched (case-insensitively) in each trainable tensor's name; "
        "the coordinates of a matching tensor are FiLM coordinates. E.g. add 'lm_head' for the head's LoRA.",
    )

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from exc
        return patterns
