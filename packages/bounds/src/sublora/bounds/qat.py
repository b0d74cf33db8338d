"""Quantization-aware fine-tuning (QAT): let the quantized model recover what rounding cost it.

Plain quantization maps the trained vector w to its nearest codebook entries and stops; the
network never sees the rounded values while training. QAT continues training *through* the
rounding with a straight-through estimator (STE):

    forward:   w_q = codebook[nearest(w)]           (the model the file will hold)
    backward:  dL/dw = dL/dw_q,  dL/dcodebook[j] = sum of dL/dw_q[i] over the i assigned to j

so the codebook entries move to where the loss wants them and entries of w can change cluster.
The codebook that comes out is in general neither the quantizer's shape (an evenly spaced grid
becomes uneven) nor its size (entries no value uses are dropped); ``QatResult.codebooks`` says so
per tensor. A quantizer whose codebook is part of the method declares
``QuantizerConfig.fixed_codebook = True``: its codebook is then kept exactly (every entry, same
fp16 values) and only the values are trained, so they may change cluster.
Every hypothesis tensor is handled the same way: w and any projector-owned tensor (e.g. learned
gates) each get their own codebook, fine-tuned jointly. Only training batches are used: QAT is
part of fitting the hypothesis, and the bound already pays for whatever file comes out of it.
Eval mode (no dropout), seeded batches, a fixed number of Adam steps: deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.func import functional_call

from sublora.core.quantizer import QuantizedVector, nearest

#: Offset of the QAT batch stream from ``bound.seed`` (the evaluation subsamples use seed and seed + 1).
BATCH_SEED_OFFSET = 3


@dataclass
class QatResult:
    """``codebooks[name]``: what QAT did to that tensor's codebook, for the certificate's ``qat`` record:
    ``trained`` (False when the quantizer declares ``fixed_codebook``), ``changed`` (any entry moved,
    added or dropped), ``levels_before`` and ``levels_after``."""

    quantized: dict[str, QuantizedVector]
    losses: list[float] = field(default_factory=list)  # straight-through (= quantized) training loss per step, nats
    seconds: float = 0.0
    codebooks: dict[str, dict[str, Any]] = field(default_factory=dict)


def straight_through(values: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """codebook[nearest(values)] in the forward pass; gradients reach both ``values`` (identity) and ``codebook``.

    values (n,), codebook (L,) -> (n,). The codebook need not stay sorted; ties go to the lower index.
    """
    with torch.no_grad():
        order = torch.argsort(codebook)
        ordered = codebook[order]
        mids = (ordered[1:] + ordered[:-1]) / 2  # (L - 1,) cluster edges
        symbols = order[torch.bucketize(values, mids)]  # (n,); a value on an edge goes to the lower entry
    hard = codebook[symbols]  # gather: its gradient scatter-adds into the codebook
    return hard + (values - values.detach())  # value unchanged (x - x == 0), gradient identity into values


def requantize(values: np.ndarray, codebook: np.ndarray) -> QuantizedVector:
    """Final symbols: nearest entry of the fp16-rounded codebook (as the file stores it); unused entries dropped."""
    book = np.unique(np.asarray(codebook, dtype=np.float16))
    book = book[np.isfinite(book)]
    if book.size == 0:
        book = np.zeros(1, dtype=np.float16)
    symbols = nearest(np.asarray(values, dtype=np.float64).ravel(), book.astype(np.float64))
    used = np.unique(symbols)
    remap = np.zeros(book.size, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return QuantizedVector(remap[symbols], book[used])


def snap(values: np.ndarray, fixed: QuantizedVector) -> QuantizedVector:
    """Final symbols against a fixed codebook: nearest entry; the codebook is kept whole (unused entries too)."""
    book = np.asarray(fixed.codebook, dtype=np.float16)
    symbols = nearest(np.asarray(values, dtype=np.float64).ravel(), book.astype(np.float64))
    return QuantizedVector(symbols, book, fixed_codebook=True)


def codebook_record(before: QuantizedVector, after: QuantizedVector) -> dict[str, Any]:
    """What happened to one codebook: trained or fixed, changed or not, its size before and after."""
    a, b = np.asarray(before.codebook, dtype=np.float16), np.asarray(after.codebook, dtype=np.float16)
    return {"trained": not before.fixed_codebook, "changed": not np.array_equal(a.view(np.uint16), b.view(np.uint16)),
            "levels_before": int(a.size), "levels_after": int(b.size)}


def fine_tune(model, data, continuous: dict[str, torch.Tensor], quantized: dict[str, QuantizedVector], *,
              steps: int, lr: float, batch_size: int, block_size: int, seed: int,
              progress: Callable[[int, int], None] | None = None) -> QatResult:
    """Fine-tune every hypothesis tensor and its codebook through the rounding, then re-quantize.

    ``continuous``: the trained (unquantized) hypothesis tensors, e.g. ``model.hypothesis()`` cloned;
    ``quantized``: their plain quantization (the starting codebooks; one marked ``fixed_codebook``
    stays as it is). The model's own parameters are left untouched. Batches come from the training
    split only, drawn with ``seed``.
    """
    if steps <= 0:
        return QatResult(dict(quantized), codebooks={n: codebook_record(q, q) for n, q in quantized.items()})
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()  # no dropout: the certified model is evaluated in eval mode too
    values = {n: continuous[n].detach().reshape(-1).float().clone().requires_grad_(True) for n in quantized}
    books = {n: torch.tensor(q.codebook.astype(np.float32)).requires_grad_(not q.fixed_codebook)
             for n, q in quantized.items()}

    def trained(n: str) -> list[torch.Tensor]:
        return [values[n]] + ([books[n]] if books[n].requires_grad else [])

    owned = [n for n in quantized if n != "w"]
    scale = float(getattr(model.projector, "lr_scale", 1.0))  # projector-owned tensors train at their own rate
    groups = [{"params": trained("w"), "lr": lr}]
    if owned:
        groups.append({"params": [t for n in owned for t in trained(n)], "lr": lr * scale})
    optimizer = torch.optim.Adam(groups)
    shapes = {f"projector.{n}": p.shape for n, p in model.projector.named_parameters()}
    gen = torch.Generator().manual_seed(seed + BATCH_SEED_OFFSET)
    losses = []
    try:
        for step in range(steps):
            x, y = data.get_batch("train", batch_size, block_size, gen)
            hard = {n: straight_through(values[n], books[n]) for n in quantized}
            projector_params = {n.removeprefix("projector."): hard[n].view(shapes[n]) for n in owned}
            theta = model.theta0 + functional_call(model.projector, projector_params, (hard["w"],))
            loss = model.loss(x, y, theta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
            if progress:
                progress(step + 1, steps)
    finally:
        model.train(was_training)
    out = {n: snap(values[n].detach().double().numpy(), q) if q.fixed_codebook
           else requantize(values[n].detach().double().numpy(), books[n].detach().numpy())
           for n, q in quantized.items()}
    codebooks = {n: codebook_record(quantized[n], out[n]) for n in quantized}
    return QatResult(out, losses, time.perf_counter() - t0, codebooks)
