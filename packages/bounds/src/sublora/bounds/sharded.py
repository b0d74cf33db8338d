"""Scoring the evidence of a certificate: on a chosen device, in one process or split over several.

    with scoring(device="auto"):                      # what `sublora bound --device` sets
        evidence = collect_evidence(model, data, config, V, progress)   # certify's scoring step
    record()                                          # the certificate's `scoring` field

`sublora bound RUN --nproc N` launches N processes with torchrun (``torch.distributed.run``; gloo, so
CPU processes work). Rank 0 runs ``certify`` as one process would: quantizing, QAT, the levels search,
coding and every bound. When it reaches the scoring step it broadcasts the settings and the quantized
hypothesis (w and projector-owned tensors: d numbers, never theta or P); the other ranks, waiting in
``serve``, rebuild the model from the run directory and the same seeds, load the hypothesis, and every
rank scores its share of the batches. Batches are cut from the settings alone (``bound.batch_size``),
never from N, and rank 0 joins the gathered batches in batch order, so the evidence is the same, bit
for bit, for any N (tests/bounds/test_sharded_scoring.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from sublora.core.errors import BoundError, ConfigError

_state: dict[str, Any] = {"device": "cpu", "sent": False, "record": None}


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when a GPU is visible, else cpu; ``cuda`` without a GPU is refused."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"Unknown device {device!r}.", hint="Use --device auto, cpu or cuda.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BoundError("--device cuda was asked for, but torch sees no CUDA GPU on this machine.",
                         hint="Use --device cpu (or auto), or install a CUDA build of torch.")
    return device


def device() -> str:
    """The device set by the enclosing ``scoring`` block (cpu outside one)."""
    return _state["device"]


def world_size() -> int:
    """Processes in this scoring run (torchrun's WORLD_SIZE; 1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


class ProcessGroupShard:
    """This process's share of a ``torch.distributed`` group (``sublora.bounds.evaluate.Shard``)."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def gather(self, parts: dict[int, Any]) -> dict[int, Any] | None:
        import torch.distributed as dist

        everyone = [None] * self.world if self.rank == 0 else None
        dist.gather_object(parts, everyone, dst=0)
        if self.rank != 0:
            return None
        joined: dict[int, Any] = {}
        for p in everyone:
            joined.update(p)
        return joined


def _shard() -> ProcessGroupShard | None:
    import torch.distributed as dist

    if world_size() < 2:
        return None
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return ProcessGroupShard()


@contextmanager
def scoring(device: str = "auto") -> Iterator[str]:
    """Score on ``device`` (resolved) inside the block; with several processes, release the waiting ranks
    if rank 0 fails before it reaches the scoring step, and close the process group at the end."""
    _state.update(device=resolve_device(device), sent=False, record=None)
    try:
        yield _state["device"]
    finally:
        if world_size() > 1 and rank() == 0 and not _state["sent"]:
            _broadcast(None)  # certify stopped early (an error, a refusal): nothing to score, ranks exit
        _state["device"] = "cpu"
        _close()


def _close() -> None:
    """Leave the group together: every rank waits at a barrier, then tears it down. A rank that
    destroyed its group and exited while rank 0 was still writing the certificate was killed by
    gloo at exit now and then ("terminate called without an active exception", exit -6)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _broadcast(payload: dict[str, Any] | None) -> dict[str, Any] | None:
    import torch.distributed as dist

    _shard()  # joins the group
    box = [payload]
    dist.broadcast_object_list(box, src=0)
    _state["sent"] = True
    return box[0]


def record() -> dict[str, Any] | None:
    """How the evidence was scored (the certificate's ``scoring``): device, dtype, processes, batches, time."""
    return _state["record"]


def collect_evidence(model, data, config, vocab: int, progress):
    """Token-level and document-level evidence of ``model`` (certify's scoring step); with several
    processes this is rank 0's side: the hypothesis goes out, the other ranks' batches come back."""
    if world_size() > 1:
        _broadcast({"config": config.to_dict(), "vocab": vocab, "device": _state["device"],
                    "hypothesis": {k: v.clone() for k, v in model.hypothesis().items()}})
    return _score(model, data, config, vocab, progress, _state["device"])


def serve(run_dir) -> bool:
    """A rank > 0 of `sublora bound --nproc N`: wait for rank 0's hypothesis, score this rank's batches,
    send them back. Returns False when rank 0 stopped before scoring (it reports why)."""
    from sublora.core.config import RunConfig
    from sublora.core.train import load_trained

    payload = _broadcast(None)
    if payload is None:
        _close()
        return False
    model, _, data = load_trained(run_dir)
    config = RunConfig.from_dict(payload["config"])
    model.load_hypothesis(payload["hypothesis"])
    _score(model, data, config, payload["vocab"], None, payload["device"])
    _close()
    return True


def _score(model, data, config, vocab: int, progress, device: str):
    from contextlib import nullcontext

    from sublora.bounds.evaluate import batch_rows, score_documents, score_token_blocks
    from sublora.bounds.inference import predictor
    from sublora.core.bound import Evidence

    progress = progress or (lambda _: nullcontext(None))
    b, alphas, block = config.bound, tuple(config.bound.alphas), config.model.block_size
    shard = _shard()
    threads = torch.get_num_threads()
    if shard is not None:  # the cores are shared out between the processes
        torch.set_num_threads(max(1, config.train.threads // shard.world))
    t0 = time.perf_counter()
    try:
        model.eval()
        predict = predictor(model, device, b.dtype)
        with progress("score token blocks") as bar:
            tokens = score_token_blocks(model, data.train, block, alphas, b.token_blocks, seed=b.seed,
                                        batch_size=b.batch_size, progress=bar, topk=b.topk, vocab=vocab,
                                        predict=predict, shard=shard)
        with progress("score documents") as bar:
            starts, ends = data.doc_bounds("train")
            documents = score_documents(model, data.train, starts, ends, data.eot_id, block, b.doc_stride or block,
                                        alphas, b.topk, b.doc_samples, seed=b.seed + 1, batch_size=b.batch_size,
                                        progress=bar, vocab=vocab, predict=predict, shard=shard)
    finally:
        torch.set_num_threads(threads)
    if tokens is None:  # not rank 0: its batches went to rank 0
        return None
    _state["record"] = {
        "device": device, "dtype": b.dtype, "processes": 1 if shard is None else shard.world,
        "threads_per_process": max(1, config.train.threads // shard.world) if shard else threads,
        "forward": "merged network: theta = theta0 + P w materialised, LoRA merged into the base weights, "
                   f"inference mode, {b.dtype} weights and activations",
        "batch_rows": batch_rows(block, vocab, b.batch_size),
        "token_blocks": "all" if not tokens.sampled else int(tokens.blocks),
        "seconds": round(time.perf_counter() - t0, 2), "torch": torch.__version__,
    }
    return Evidence(vocab_size=vocab, alphas=alphas, documents=documents, tokens=tokens)
