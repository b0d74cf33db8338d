"""One entry point per estimator spec of docs/bounds.md, on plain arrays.

``compute(spec, options, evidence, C, delta)`` returns the reference results of the spec
(``azuma``, ``freedman``, ``subsampling``, ``pacbayes:{kl,mcallester,catoni}``), raising
``Refused`` where section 2 says the estimator must refuse the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference import ranges
from reference.common import Refused, Result
from reference.documents import subsampling
from reference.pacbayes import beta_grid, pacbayes
from reference.tokens import azuma, freedman, lambda_grid


@dataclass(frozen=True)
class TokenData:
    """Section 5's evidence: ``loss``/``xi2`` (|A|, m) block means; ``extremes`` (|A|, 2) per-token [min, max]."""

    total_blocks: int
    block_size: int
    sampled: bool
    loss: np.ndarray
    xi2: np.ndarray
    extremes: np.ndarray | None = None
    topk: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """n = total_blocks x block_size training tokens."""
        return self.total_blocks * self.block_size


@dataclass(frozen=True)
class DocumentData:
    """Section 6's evidence: ``bpd`` (|A|, n) sampled documents' mean losses out of N training documents."""

    N: int
    bpd: np.ndarray
    extremes: np.ndarray | None = None
    topk: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class EvidenceData:
    V: int
    alphas: tuple[float, ...]
    tokens: TokenData | None = None
    documents: DocumentData | None = None


#: Section 4: the default ``subsample_bound`` of each family.
DEFAULT_UCB = {"azuma": "bernstein", "freedman": "bernstein", "subsampling": "hoeffding", "pacbayes": "hoeffding"}


def _check_tokens(ev: EvidenceData, xi2: bool = False, topk: bool = False) -> None:
    t = ev.tokens
    if not t.sampled and t.loss.shape[1] != t.total_blocks:
        raise Refused("all blocks claimed but not all evaluated (section 5)")
    ranges.require_losses(t.loss, t.extremes, ev.alphas, ev.V, "token")
    if xi2:
        ranges.require_within(t.xi2, 0.0, 1.0, "xi^2")
    if topk:
        for k, e in t.topk.items():
            ranges.require_within(e, 0.0, 1.0, f"token top-{k}")


def _check_documents(ev: EvidenceData) -> None:
    d = ev.documents
    ranges.require_losses(d.bpd, d.extremes, ev.alphas, ev.V, "document")
    for k, e in d.topk.items():
        ranges.require_within(e, 0.0, 1.0, f"document top-{k}")


def compute(spec: str, options: dict | None, ev: EvidenceData, C: float, delta: float) -> list[Result]:
    """The reference results of one estimator spec (``family[:variant]``) with its options."""
    family, _, variant = spec.partition(":")
    o = dict(options or {})
    kind = o.get("subsample_bound", DEFAULT_UCB[family])
    f = o.get("subsample_delta_fraction", 0.5)
    V, alphas = ev.V, ev.alphas
    t, d = ev.tokens, ev.documents
    if family == "azuma":
        if t is None:
            return []
        _check_tokens(ev)
        return [azuma(t.loss, alphas, V, t.n, t.sampled, C, delta, f, kind)]
    if family == "freedman":
        if t is None:
            return []
        _check_tokens(ev, xi2=True)
        lambdas = lambda_grid(o.get("grid_size", 1000), o.get("lambda_min", 1e-4), o.get("lambda_max", 0.999))
        return [freedman(t.loss, t.xi2, alphas, V, t.n, t.sampled, C, delta, lambdas, f, kind)]
    if family == "subsampling":
        out = []
        if d is not None:
            _check_documents(ev)
            out += subsampling(d.bpd, d.topk, alphas, V, d.N, C, delta, kind)
        if t is not None and o.get("sequences", False):
            _check_tokens(ev, topk=True)
            out += subsampling(t.loss, t.topk, alphas, V, t.total_blocks, C, delta, kind, sampled=t.sampled,
                               sequences=True)
        return out
    if family == "pacbayes":
        if d is None:
            return []
        _check_documents(ev)
        variant = variant or "kl"
        betas = (beta_grid(o.get("grid_size", 100), o.get("beta_min", 0.01), o.get("beta_max", 1000.0))
                 if variant == "catoni" else None)
        return pacbayes(d.bpd, d.topk, alphas, V, d.N, C, delta, variant, f, kind, betas)
    raise ValueError(f"no reference for {spec!r}")
