"""Options of the ``lmgc`` data source: serialized gradients/weights as a training corpus.

The entry point (``sublora.sources``: ``lmgc = ...:GradsSourceConfig``) names this class, so it
stays cheap to import (pydantic only; no numpy, torch or safetensors). The implementation is
``sublora.lmgc.source.GradsSource``, imported when the source is built.

    sublora data prepare --source lmgc:grads --data.source_options.paths=[grads/seed1,grads/seed2]
    sublora train --out runs/param-prior --data.source=lmgc:grads --data.source_options.paths=[...]

Variants say which checkpoints of each directory are read: ``grads`` (the gradient checkpoints,
default), ``weights`` (the final weights) or ``all`` (both, gradients first).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from sublora.core.source import SourceConfig


class GradsSourceConfig(SourceConfig):
    description: ClassVar[str] = (
        "Serialized gradients/weights of collected runs (sublora-grads/1 directories) as text, one document per "
        "512-byte chunk or per checkpoint: the corpus of a neural parameter prior for LM-GC."
    )
    variants: ClassVar[tuple[str, ...]] = ("grads", "weights", "all")
    default_variant: ClassVar[str | None] = "grads"
    implementation: ClassVar[str] = "sublora.lmgc.source:GradsSource"

    paths: list[str] = Field(..., min_length=1, description="Gradient directories (with index.json) or glob "
                             "patterns matching them, e.g. [grads/convnet-seed1, 'grads/mlp-*'].")
    serialization: str = Field("hex-space", description="How bytes become text (docs/lmgc.md, 'Serialize'): the "
                               "serialization the prior will code with.")
    bytes_per_group: int | None = Field(4, ge=1, description="Bytes per group (null: the whole chunk is one group).")
    document: Literal["checkpoint", "chunk"] = Field(
        "checkpoint", description="One document per checkpoint, its chunks' texts joined with nothing between them "
        "(exactly the token stream `sublora lmgc compress` codes: the better prior, docs/lmgc.md), or one per "
        "serialized 512-byte chunk (an end-of-text token after each, which the coded stream never has).")
    steps: list[int] | None = Field(None, description="Gradient checkpoints to read, by step (null: every one). "
                                    "Ignored by the `weights` variant.")
    select: list[str] | None = Field(None, description="Tensor names or fnmatch patterns to keep (null: every "
                                     "tensor, in state_dict order), e.g. ['w'] for a sublora run's subspace vector.")
    max_chunks: int | None = Field(None, ge=1, description="At most this many 512-byte chunks per checkpoint, "
                                   "evenly spaced (null: all): a smaller corpus that still spans every tensor.")

    @field_validator("paths", mode="before")
    @classmethod
    def _one_path(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("serialization")
    @classmethod
    def _known(cls, v: str) -> str:
        from sublora.lmgc.serialize import SERIALIZATIONS

        if v not in SERIALIZATIONS:
            import difflib

            close = difflib.get_close_matches(v, SERIALIZATIONS, n=1)
            raise ValueError(f"unknown serialization {v!r}{f'; did you mean {close[0]!r}?' if close else ''} "
                             f"available: {', '.join(SERIALIZATIONS)}")
        return v
