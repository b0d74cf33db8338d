"""The bound-estimator interface and the evidence it consumes.

Evidence is computed once per run (by scoring the quantized, smoothed model
in eval mode) and handed to every registered estimator. All losses are in
bits. An estimator returns one ``BoundResult`` per quantity it certifies,
with every input it used, so a number can be recomputed by hand.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sublora.core.component import ComponentConfig

if TYPE_CHECKING:  # numpy only in annotations: importing the interface (as `sublora plugins` does) stays cheap
    import numpy as np


class BoundConfig(ComponentConfig):
    kind: ClassVar[str] = "bound"


@dataclass
class DocumentEvidence:
    """Documents drawn uniformly with replacement from the N training documents.

    ``bpd[a, i]``: mean smoothed loss (bits/token) of sampled document i at alpha index a.
    ``topk_error[k][i]``: fraction of its tokens whose true token is not among the top k.
    ``loss_extremes[a]``: (min, max) of the per-token losses behind the document means.
    """

    N: int
    indices: np.ndarray
    bpd: np.ndarray
    topk_error: dict[int, np.ndarray]
    tokens_scored: int
    loss_extremes: np.ndarray | None = None  # (A, 2): smallest and largest per-token loss scored, per alpha

    @property
    def n(self) -> int:
        return int(len(self.indices))


@dataclass
class TokenEvidence:
    """Token-level evidence over the first ``n`` training tokens (whole blocks only).

    The predictor for token k sees the tokens since the start of its aligned
    block of ``block_size`` tokens. ``loss[a, b]`` is the mean smoothed loss
    (bits) of evaluated block b at alpha index a; ``xi2[a, b]`` the block mean of
    xi^2 with xi = (Y - X) / log2(V / alpha), Y = entropy (bits) of the smoothed
    prediction. ``topk_error[k][b]``: share of block b's tokens whose true token is
    not among the k most likely. ``loss_extremes[a]``: (min, max) of the per-token losses
    behind the block means, so a bound can check the range it pays for token by token. ``sampled`` is False when every block was evaluated exactly
    once, True when blocks were drawn uniformly with replacement.
    """

    n: int
    block_size: int
    block_indices: np.ndarray
    sampled: bool
    loss: np.ndarray
    xi2: np.ndarray
    topk_error: dict[int, np.ndarray] = field(default_factory=dict)  # k -> (blocks,) share of tokens outside top k
    loss_extremes: np.ndarray | None = None  # (A, 2): smallest and largest per-token loss scored, per alpha

    @property
    def blocks(self) -> int:
        return int(len(self.block_indices))

    @property
    def total_blocks(self) -> int:
        return self.n // self.block_size


@dataclass
class Evidence:
    """What every estimator sees. ``vocab_size`` is V of the smoothed predictor: the number of
    outputs the scored distribution ranges over (docs/bounds.md section 2)."""

    vocab_size: int
    alphas: tuple[float, ...]
    documents: DocumentEvidence | None = None
    tokens: TokenEvidence | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Complexity(BaseModel):
    """Bits paid for the hypothesis: C(h) = L + 2 log2 L, plus extra bits.

    ``extra_bits`` = hyperparameter bits + log2 of the alpha grid size (and any
    other searched choice, itemized in ``extra_breakdown``).
    """

    model_config = ConfigDict(extra="forbid")

    code_bits: int = Field(ge=1, description="L: length of the compressed model file in bits.")
    extra_bits: float = Field(ge=0)
    extra_breakdown: dict[str, float] = Field(default_factory=dict)

    @property
    def prefix_bits(self) -> float:
        """C(h) = L + 2 log2 L: the prefix-free code length."""
        return self.code_bits + 2.0 * math.log2(self.code_bits)

    @property
    def total_bits(self) -> float:
        return self.prefix_bits + self.extra_bits

    @property
    def nats(self) -> float:
        """div = (C(h) + extra bits) * ln 2."""
        return self.total_bits * math.log(2.0)


class BoundResult(BaseModel):
    """One certified number. ``target`` names the population quantity it bounds, which the
    validity contract (``sublora.core.testing.check_bound_validity``) compares it with:
    ``document_bpd`` (mean smoothed bits per token of a document, at ``inputs["alpha"]``),
    ``document_top{k}`` (a document's top-k error rate) or ``token_bpd`` (the mean over
    training tokens of the conditional expected smoothed loss, at ``inputs["alpha"]``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    estimator: str
    target: str = ""
    value: float
    empirical: float
    complexity_term: float
    confidence_term: float
    random_guess: float
    units: str
    vacuous: bool
    inputs: dict[str, Any]
    assumptions: list[str] = Field(default_factory=list, description=(
        "Conditions beyond the estimator's stated scenario that the number relies on and sublora cannot "
        "ensure (e.g. i.i.d. training blocks); printed next to the value. Empty: none."))


class BoundEstimator(ABC):
    """Turns evidence + complexity into bounds, each valid with probability >= 1 - delta."""

    def __init__(self, config: BoundConfig):
        self.config = config

    @property
    def name(self) -> str:
        return self.config.spec

    @abstractmethod
    def compute(self, evidence: Evidence, complexity: Complexity, delta: float) -> list[BoundResult]:
        """Return the bounds this estimator can certify from the evidence (maybe none)."""
