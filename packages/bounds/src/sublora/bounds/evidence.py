"""Evidence from a model's outputs: what the estimators consume, for any model and data.

    scores = score_logits(logits, targets, alphas)        # or score_nll(nll, alphas, vocab)
    tokens = token_evidence(scores)                        # each row a block of the training stream
    documents = document_evidence(scores, N=...)           # or each row a sampled document
    evidence = Evidence(vocab_size=scores.vocab, alphas=scores.alphas, tokens=tokens, documents=documents)

A *unit* is one row of what is scored (the first dimension): a block of tokens for the
token-level bounds, a document for the document-level ones. Per unit and alpha, the scores hold
the mean smoothed loss X = -log2((1 - alpha) p(target) + alpha / V) in bits, the mean xi^2 with
xi = (Y - X) / log2(V / alpha) and Y the entropy (bits) of the smoothed prediction, the share of
tokens whose target is not among the k most likely, and the smallest and largest per-token X
(docs/bounds.md sections 2 and 5). The arithmetic is the scorer's (``sublora.bounds.evaluate``),
step for step, so the same logits give the same numbers.

V, the size of the smoothed predictor's vocabulary (docs/bounds.md section 2), is fixed before
any data is seen: by default every output of the model (``logits.size(-1)``, the ``model`` rule);
a smaller ``vocab`` keeps the first ``vocab`` logits, i.e. renormalises the model's distribution
over those ids (the ``tokenizer`` rule). Every estimator is then given this V
(``Evidence.vocab_size``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sublora.bounds.smoothing import loss_range
from sublora.core.bound import DocumentEvidence, TokenEvidence
from sublora.core.errors import BoundError

LOG2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class Scores:
    """Per-unit statistics of the smoothed predictor at each alpha; R units (rows), A alphas.

    ``loss[a, r]``: mean smoothed loss (bits) of unit r's scored tokens; ``xi2[a, r]``: their mean
    xi^2 (1.0, its largest possible value, when only losses were given: ``score_nll``);
    ``topk_error[k][r]``: share of them whose target is not among the k most likely;
    ``loss_extremes[a]``: (min, max) per-token loss over every unit; ``tokens[r]``: tokens scored.
    """

    alphas: tuple[float, ...]
    vocab: int
    loss: np.ndarray  # (A, R)
    xi2: np.ndarray  # (A, R)
    loss_extremes: np.ndarray  # (A, 2)
    tokens: np.ndarray  # (R,)
    topk_error: dict[int, np.ndarray] = field(default_factory=dict)  # k -> (R,)

    @property
    def units(self) -> int:
        return int(self.tokens.size)

    @classmethod
    def concat(cls, parts: Sequence[Scores]) -> Scores:
        """The scores of several batches as one, units in order (same alphas, V and top-k)."""
        parts = list(parts)
        if not parts:
            raise BoundError("No scores to join.")
        first = parts[0]
        for p in parts[1:]:
            if (p.alphas, p.vocab, sorted(p.topk_error)) != (first.alphas, first.vocab, sorted(first.topk_error)):
                raise BoundError("Scores to join differ in alphas, V or top-k.",
                                 hint="Score every batch with the same alphas, vocab and topk.")
        extremes = np.stack([p.loss_extremes for p in parts])  # (P, A, 2)
        return cls(first.alphas, first.vocab, np.concatenate([p.loss for p in parts], axis=1),
                   np.concatenate([p.xi2 for p in parts], axis=1),
                   np.stack([extremes[:, :, 0].min(0), extremes[:, :, 1].max(0)], axis=1),
                   np.concatenate([p.tokens for p in parts]),
                   {k: np.concatenate([p.topk_error[k] for p in parts]) for k in first.topk_error})


def _alphas(alphas: Sequence[float], vocab: int) -> tuple[float, ...]:
    alphas = tuple(float(a) for a in alphas)
    if not alphas:
        raise BoundError("Give at least one smoothing alpha.")
    for a in alphas:
        loss_range(a, vocab)  # checks 0 < alpha <= 1 and V >= 2
    return alphas


def _mask(mask, shape: torch.Size) -> torch.Tensor | None:
    """The scored positions (R, M) as bool, or None when every position is scored."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask, dtype=torch.bool)
    if mask.dim() < 1 or mask.size(0) != shape[0] or mask.numel() != shape.numel():
        raise BoundError(f"mask of shape {tuple(mask.shape)} does not match the {shape[0]} units of {shape[1]} "
                         "positions that are scored.")
    mask = mask.reshape(shape)
    if not mask.any(1).all():
        raise BoundError("Every unit must have at least one scored position (mask).")
    return mask


def _unit_mean(x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """Mean over each unit's scored positions: (..., R, M) -> (..., R) float64."""
    if mask is None:
        return x.mean(-1).double().numpy()
    return (torch.where(mask, x, 0.0).sum(-1).double() / mask.sum(-1)).numpy()


def _extremes(x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """(min, max) over the scored positions, per alpha: x (A, R, M) -> (A, 2)."""
    flat = x.reshape(x.size(0), -1) if mask is None else x[:, mask]  # (A, tokens)
    return np.stack([flat.amin(1).double().numpy(), flat.amax(1).double().numpy()], axis=1)


def smoothed_loss(logp_target: torch.Tensor, alphas: tuple[float, ...], vocab: int) -> torch.Tensor:
    """X = -log2((1 - alpha) p(target) + alpha / V), bits: (M,) -> (A, M)."""
    a = torch.tensor(alphas, dtype=logp_target.dtype).unsqueeze(1)  # (A, 1)
    return -torch.log2((1.0 - a) * logp_target.exp() + a / vocab)  # (A, M)


def target_rank(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The target's place in the predictor's ranking, 0 = first: logits (M, V), targets (M,) -> (M,) int32.

    The ranking orders ids by logit, equal logits by id (the lower first). It must not look at the
    target, so that "the target is among the k first" is the error of a set predictor fixed before the
    data: letting ties favour the target would count a tie as a hit for any target in it (bfloat16
    logits tie often). Counted in int32: an int64 count of the (M, V) comparison filled 8 bytes per entry.
    """
    picked = logits.gather(-1, targets.unsqueeze(-1))  # (M, 1)
    rank = (logits > picked).sum(-1, dtype=torch.int32)
    tied = (logits == picked).sum(-1, dtype=torch.int32) > 1  # another id has the target's logit
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        ids = torch.arange(logits.size(-1), device=logits.device)
        before = (logits[rows] == picked[rows]) & (ids < targets[rows].unsqueeze(-1))  # tied ids ranked first
        rank[rows] += before.sum(-1, dtype=torch.int32)
    return rank


def _smoothed_entropy(p: torch.Tensor, alphas: tuple[float, ...]) -> torch.Tensor:
    """Entropy (bits) of each smoothed prediction: p (M, V) -> (A, M). Two (M, V) buffers serve every alpha
    (fresh ones per alpha made this a fifth of scoring's time); the same operations, so the same bits."""
    V = p.size(-1)
    out = torch.empty(len(alphas), p.size(0))  # (A, M)
    ph, plogp = torch.empty_like(p), torch.empty_like(p)  # (M, V)
    for i, alpha in enumerate(alphas):
        torch.mul(p, 1.0 - alpha, out=ph).add_(alpha / V)
        torch.log(ph, out=plogp).mul_(ph)
        torch.sum(plogp, -1, out=out[i])
    return out.mul_(-LOG2E)


@torch.no_grad()
def score_logits(logits, targets, alphas: Sequence[float], *, vocab: int | None = None,
                 topk: Sequence[int] = (), mask=None) -> Scores:
    """Scores of R units from the model's logits (R, ..., V_model) and the targets (R, ...).

    Every position of a unit is one predicted token (a classifier's logits (R, V) and labels (R,)
    are R units of one token each). ``vocab``: V of the smoothed predictor, default ``V_model``; a
    smaller one keeps the first ``vocab`` logits. ``topk``: also the top-k error rates. ``mask``
    (R, ...): the positions to score (padding excluded); default every one.
    """
    logits = torch.as_tensor(logits).detach().float()
    targets = torch.as_tensor(targets).detach().long()
    if logits.dim() < 2 or tuple(logits.shape[:-1]) != tuple(targets.shape):
        raise BoundError(f"logits {tuple(logits.shape)} must be the targets' shape {tuple(targets.shape)} plus "
                         "one last dimension over the vocabulary.")
    outputs = logits.size(-1)
    vocab = outputs if vocab is None else int(vocab)
    if vocab > outputs:
        raise BoundError(f"V = {vocab} exceeds the model's {outputs} outputs: some ids would have no probability.",
                         hint="Use a V no larger than the logits' last dimension (docs/bounds.md section 2).")
    alphas = _alphas(alphas, vocab)
    if vocab < outputs:
        logits = logits[..., :vocab]  # renormalises the distribution over the first V ids
    R, M = targets.size(0), targets[0].numel() if targets.numel() else 0
    if R < 1 or M < 1:
        raise BoundError(f"Nothing to score: targets of shape {tuple(targets.shape)}.")
    A = len(alphas)
    keep = _mask(mask, torch.Size((R, M)))
    logits = logits.reshape(-1, vocab)  # (R*M, V)
    targets = targets.reshape(-1) if keep is None else torch.where(keep.reshape(-1), targets.reshape(-1), 0)  # (R*M,)
    if not 0 <= int(targets.min()) <= int(targets.max()) < vocab:
        raise BoundError(f"Targets must lie in [0, {vocab}); got [{int(targets.min())}, {int(targets.max())}].")
    logp = torch.log_softmax(logits, dim=-1)  # (R*M, V)
    x = smoothed_loss(logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), alphas, vocab)  # (A, R*M)
    log_range = torch.tensor([math.log2(vocab / a) for a in alphas]).unsqueeze(1)  # (A, 1)
    xi = (_smoothed_entropy(logp.exp(), alphas) - x) / log_range  # (A, R*M)
    errors = {}
    if topk:
        rank = target_rank(logits, targets).view(R, M)  # (R, M): ids that beat it
        errors = {int(k): _unit_mean((rank >= int(k)).double(), keep) for k in topk}
    x = x.view(A, R, M)
    return Scores(alphas, vocab, _unit_mean(x, keep), _unit_mean(xi.square_().view(A, R, M), keep),
                  _extremes(x, keep), np.full(R, M) if keep is None else keep.sum(1).numpy(), errors)


@torch.no_grad()
def score_nll(nll, alphas: Sequence[float], vocab: int, *, mask=None) -> Scores:
    """Scores of R units from per-token losses -ln p(target) in nats (R, ...), e.g.
    ``F.cross_entropy(..., reduction="none")``, or ``-log(p)`` of given target probabilities.

    ``vocab`` is V of the model's distribution (required: losses do not show it). Without the
    predicted distribution there is no entropy and no ranking: xi^2 is set to 1, its largest
    value (the Freedman bound stays valid, and looser), and there are no top-k errors.
    """
    nll = torch.as_tensor(nll).detach().float()
    if nll.dim() < 1:
        raise BoundError("nll must have one row per unit.")
    alphas = _alphas(alphas, int(vocab))
    R = nll.size(0)
    nll = nll.reshape(R, -1)  # (R, M)
    if R < 1 or nll.size(1) < 1:
        raise BoundError(f"Nothing to score: nll of shape {tuple(nll.shape)}.")
    keep = _mask(mask, nll.shape)
    if keep is not None:
        nll = torch.where(keep, nll, 0.0)  # padding may hold anything
    if not torch.isfinite(nll).all() or (nll < 0).any():
        raise BoundError("Per-token losses -ln p(target) must be finite and non-negative.")
    x = smoothed_loss(-nll.reshape(-1), alphas, int(vocab)).view(len(alphas), R, -1)  # (A, R, M)
    return Scores(alphas, int(vocab), _unit_mean(x, keep), np.ones((len(alphas), R)), _extremes(x, keep),
                  np.full(R, nll.size(1)) if keep is None else keep.sum(1).numpy())


def _joined(scores: Scores | Sequence[Scores]) -> Scores:
    return scores if isinstance(scores, Scores) else Scores.concat(scores)


def token_evidence(scores: Scores | Sequence[Scores], *, block_indices=None,
                   total_blocks: int | None = None) -> TokenEvidence:
    """Token-level evidence: each unit is one aligned block of the training stream, all of one length.

    Default: the units are every block of the stream, each once (no subsampling term). With
    ``block_indices`` (one per unit) they are blocks drawn uniformly with replacement from
    ``total_blocks``; the estimators then add a subsample term (docs/bounds.md section 4).
    """
    s = _joined(scores)
    block_size = int(s.tokens[0]) if s.units else 0
    if not s.units or (s.tokens != block_size).any():
        raise BoundError("Token-level evidence needs units (blocks) that all score the same number of tokens.",
                         hint="Score whole blocks of one length, without a mask.")
    if block_indices is None:
        if total_blocks not in (None, s.units):
            raise BoundError(f"{s.units} blocks scored of total_blocks={total_blocks}: say which ones were drawn.",
                             hint="Pass block_indices (drawn uniformly with replacement), or score every block.")
        indices, sampled, total = np.arange(s.units), False, s.units
    else:
        indices = np.asarray(block_indices, dtype=np.int64)
        if total_blocks is None or indices.shape != (s.units,) or indices.min() < 0 or indices.max() >= total_blocks:
            raise BoundError(f"block_indices must hold one index in [0, total_blocks) per scored block ({s.units}); "
                             f"got shape {indices.shape} with total_blocks={total_blocks}.")
        sampled, total = True, int(total_blocks)
    return TokenEvidence(n=total * block_size, block_size=block_size, block_indices=indices, sampled=sampled,
                         loss=s.loss, xi2=s.xi2, topk_error=dict(s.topk_error), loss_extremes=s.loss_extremes)


def document_evidence(scores: Scores | Sequence[Scores], *, N: int | None = None, indices=None) -> DocumentEvidence:
    """Document-level evidence: each unit is one document drawn uniformly with replacement from the
    N training documents (``indices``: which; default the units are documents 0..R-1 and N = R).

    A document is predicted from its start (docs/bounds.md section 6: an end-of-text token then its
    own tokens); its unit values are means over its tokens.
    """
    s = _joined(scores)
    if indices is None:
        indices = np.arange(s.units)
    indices = np.asarray(indices, dtype=np.int64)
    N = s.units if N is None else int(N)
    if indices.shape != (s.units,) or (indices.size and (indices.min() < 0 or indices.max() >= N)):
        raise BoundError(f"indices must hold one document index in [0, N={N}) per scored unit ({s.units}); "
                         f"got shape {indices.shape}.")
    return DocumentEvidence(N=N, indices=indices, bpd=s.loss, topk_error=dict(s.topk_error),
                            tokens_scored=int(s.tokens.sum()), loss_extremes=s.loss_extremes)
