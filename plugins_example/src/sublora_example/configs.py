"""The entry points: one config class per component, cheap to import (no torch, no sublora.bounds).

``sublora plugins`` imports this module to list the components; each config names its
implementation (``"module:Class"``), imported only when the component is built.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from sublora.core.bound import BoundConfig
from sublora.core.coder import CoderConfig
from sublora.core.projector_config import ProjectorConfig
from sublora.core.quantizer import QuantizerConfig
from sublora.core.source import SourceConfig
from sublora.core.tokenizer import TokenizerConfig


class HashingConfig(ProjectorConfig):
    """Hashing trick: each coordinate of theta copies one signed coordinate of w."""

    description: ClassVar[str] = (
        "Hashing trick / count sketch: (P w)_i = s_i sqrt(d/D) w[h(i)], every column hit; O(D) memory and time."
    )
    implementation: ClassVar[str] = "sublora_example.hashing:HashingProjector"


class GridConfig(QuantizerConfig):
    """An evenly spaced grid; its points are the method, so QAT must keep them (fixed_codebook)."""

    description: ClassVar[str] = "Evenly spaced grid of `levels` points on [-max|w|, max|w|]; QAT keeps the grid."
    implementation: ClassVar[str] = "sublora_example.grid:GridQuantizer"
    fixed_codebook: ClassVar[bool] = True


class FixedWidthConfig(CoderConfig):
    description: ClassVar[str] = "ceil(log2 levels) bits per symbol, no model: the baseline entropy coders beat."
    implementation: ClassVar[str] = "sublora_example.fixedwidth:FixedWidthCoder"


class OccamConfig(BoundConfig):
    description: ClassVar[str] = ("Document-level Occam bound: a subsample limit plus a Hoeffding term over the "
                                  "N training documents, delta split by a fixed fraction.")
    implementation: ClassVar[str] = "sublora_example.occam:OccamBound"

    sample_delta_fraction: float = Field(0.5, gt=0.0, lt=1.0,
                                         description="Share of delta spent on the subsample term.")
    subsample_bound: Literal["hoeffding", "bernstein"] = Field(
        "hoeffding", description="Upper confidence limit of the subsample mean (docs/bounds.md section 4).")


class SumsConfig(SourceConfig):
    description: ClassVar[str] = "Synthetic documents of additions ('17 + 25 = 42'), seeded; needs no files."
    implementation: ClassVar[str] = "sublora_example.sums:SumsSource"

    n_documents: int = Field(2000, ge=2, description="Number of documents.")
    lines: int = Field(8, ge=1, description="Equations per document.")
    max_operand: int = Field(999, ge=1, description="Operands are drawn uniformly from 0..max_operand.")
    seed: int = Field(0, description="Seed of the operands.")


class AsciiConfig(TokenizerConfig):
    description: ClassVar[str] = "ASCII characters (ids 0-127), one id for any other character, end-of-text 129."
    implementation: ClassVar[str] = "sublora_example.ascii:AsciiTokenizer"
