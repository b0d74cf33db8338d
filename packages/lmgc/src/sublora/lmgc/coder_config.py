"""Options of the ``lm`` coder: a language-model prior codes the quantized subspace vector.

The entry point (``sublora.coders``: ``lm = ...:LMCoderConfig``) names this class, so it stays
cheap to import (pydantic only). The implementation is ``sublora.lmgc.coder.LMCoder``.

    sublora bound RUN --bound.coder=shortest \\
        --bound.coder_options='{candidates: [arithmetic, adaptive, lm],
                                candidate_options: {lm: {prior: /abs/path/PRIOR_RUN, identity: SHA256}}}'

``prior`` and ``identity`` are both required: the prior is named by its sha256 identity in the
run's config (and so in the certificate's ``bound_settings``), and a prior whose identity differs
is refused at encode and at decode (docs/lmgc.md, "The LM prior as a coder").
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from sublora.core.coder import CoderConfig

_HEX_DIGITS = set("0123456789abcdef")


class LMCoderConfig(CoderConfig):
    description: ClassVar[str] = (
        "A language-model prior (a byte-level `sublora train` run, named by path and sha256 identity) codes the "
        "symbols written as text, every character range-coded with its probabilities over the valid continuations."
    )
    implementation: ClassVar[str] = "sublora.lmgc.coder:LMCoder"

    prior: str = Field(..., description="The prior: RUN_DIR[:best|last|certified] of a `sublora train` run with the "
                       "bytes tokenizer. Use an absolute path: `sublora verify` may run from another directory.")
    identity: str = Field(..., description="The prior's sha256 identity (`sublora lmgc prior-id PRIOR` prints it); "
                          "a prior with another identity is refused at encode and decode.")
    digits: Literal["hex", "decimal"] = Field(
        "hex", description="How a symbol is written: 'hex' = fixed width (as many lowercase hex digits as the "
        "largest symbol needs), 'decimal' = variable width, each symbol ended by the separator.")
    separator: str = Field(" ", description="Text between symbols (hex: may be empty; decimal: must be non-empty "
                           "and must not start with a digit).")
    start: str = Field("", description="Text before the first symbol, e.g. '[' (costs no bits: it is fixed).")
    end: str = Field("", description="Text after the last symbol, e.g. ']' (decimal: it ends the last symbol; "
                     "empty = the separator does).")
    window: int | None = Field(None, ge=8, description="Tokens of context, BOS included (null: the prior's context). "
                               "When it is full the context restarts from BOS + its last window/2 tokens.")
    floor: float = Field(1e-4, gt=0.0, lt=0.5, description="Probability mass spread evenly over the valid "
                         "continuations, so none is uncodable.")
    dtype: Literal["float32", "float64"] = Field("float32", description="The prior's float type (part of its identity).")
    threads: int = Field(1, ge=1, description="torch threads while coding (the probabilities' bits may depend on "
                         "it, so encoder and decoder use the same number).")

    @field_validator("identity")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("must be the prior's 64-character lowercase sha256 identity "
                             "(`sublora lmgc prior-id PRIOR` prints it)")
        return v

    @field_validator("separator", "start", "end")
    @classmethod
    def _ascii(cls, v: str) -> str:
        if any(not (32 <= ord(c) < 127) for c in v):
            raise ValueError(f"{v!r} must be printable ASCII (one byte token per character)")
        return v

    @model_validator(mode="after")
    def _decimal_needs_a_terminator(self) -> "LMCoderConfig":
        if self.digits == "decimal":
            if not self.separator or self.separator[0].isdigit():
                raise ValueError("decimal symbols have variable width: the separator must be non-empty and must not "
                                 "start with a digit (it ends each symbol)")
            if self.end and self.end[0].isdigit():
                raise ValueError("with decimal digits, `end` ends the last symbol: it must not start with a digit")
        return self

    def symbol_chars(self) -> set[str]:
        return _HEX_DIGITS if self.digits == "hex" else set("0123456789")
