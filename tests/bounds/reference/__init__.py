"""An independent implementation of docs/bounds.md, written from that page alone.

It shares no code with ``sublora.bounds`` (no estimator, smoothing or certify import): plain
``math`` and ``numpy`` on plain arrays and numbers, one module per section of the page, each
function naming the section it implements. ``tests/bounds/test_reference_agreement.py`` compares
it with the estimators on random evidence and on a real certificate, so a term dropped or
weakened on either side shows up as a disagreement.

Modules: ``ranges`` (sections 1-2), ``complexity`` (3), ``subsample`` (4), ``tokens`` (5),
``documents`` (6.1 and 7), ``pacbayes`` (6.2), ``estimators`` (one entry point per estimator
spec), ``headline`` (8-9).
"""

from reference.common import Refused, Result, Undefined
from reference.complexity import div_nats, total_bits
from reference.estimators import DocumentData, EvidenceData, TokenData, compute
from reference.headline import attempts_delta, floor_evidence, headline

__all__ = [
    "DocumentData", "EvidenceData", "Refused", "Result", "TokenData", "Undefined", "attempts_delta", "compute",
    "div_nats", "floor_evidence", "headline", "total_bits",
]
