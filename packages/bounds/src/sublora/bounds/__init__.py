"""sublora-bounds: compress a trained hypothesis to exact bits and certify generalization bounds.

Cheap to import: the stable names below are loaded on first access
(``from sublora.bounds import score_logits``); docs/library.md shows them at work.
Quantizers, coders and bound estimators are components: build them by spec through
``sublora.core.Registry`` (``Registry("bound").config("azuma").build()``). Modules
whose name is also their main function are used by path:
``sublora.bounds.headline.headline``, ``sublora.bounds.certify.certify``,
``sublora.bounds.verify.verify``. Anything not listed in ``__all__`` is internal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sublora.core.lazy import lazy_exports

#: name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # evidence from a model's outputs
    "Scores": "sublora.bounds.evidence",
    "score_logits": "sublora.bounds.evidence",
    "score_nll": "sublora.bounds.evidence",
    "token_evidence": "sublora.bounds.evidence",
    "document_evidence": "sublora.bounds.evidence",
    # what the hypothesis pays
    "complexity": "sublora.bounds.prior",
    # the compressed file: the bits that are paid for
    "encode_compressed": "sublora.bounds.container",
    "decode_compressed": "sublora.bounds.container",
    "write_compressed": "sublora.bounds.container",
    "read_compressed": "sublora.bounds.container",
    # ranges of the smoothed loss (docs/bounds.md section 1)
    "loss_range": "sublora.bounds.smoothing",
    "delta_range": "sublora.bounds.smoothing",
    "freedman_range": "sublora.bounds.smoothing",
    "random_guess_bpd": "sublora.bounds.smoothing",
    "random_guess_topk": "sublora.bounds.smoothing",
    # a run's stored results
    "load_evidence": "sublora.bounds.certify",
    "load_certified": "sublora.bounds.verify",
}

__all__ = [
    "Scores",
    "complexity",
    "decode_compressed",
    "delta_range",
    "document_evidence",
    "encode_compressed",
    "freedman_range",
    "load_certified",
    "load_evidence",
    "loss_range",
    "random_guess_bpd",
    "random_guess_topk",
    "read_compressed",
    "score_logits",
    "score_nll",
    "token_evidence",
    "write_compressed",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from sublora.bounds.certify import load_evidence
    from sublora.bounds.container import decode_compressed, encode_compressed, read_compressed, write_compressed
    from sublora.bounds.evidence import Scores, document_evidence, score_logits, score_nll, token_evidence
    from sublora.bounds.prior import complexity
    from sublora.bounds.smoothing import delta_range, freedman_range, loss_range, random_guess_bpd, random_guess_topk
    from sublora.bounds.verify import load_certified
