"""Finetuning a classifier in the subspace: encode the task, train w, measure accuracy.

Read top to bottom: threads and seeds -> examples as padded token ids -> AdamW on w with
warmup + cosine LR (pretraining's ``lr_at``) -> periodic accuracy on fixed examples of each
split -> final accuracy on every example. One projection P w per step, as in pretraining.
Every ``CHECKPOINT_EVERY`` steps the whole training state (w, AdamW, both random generators,
the metrics file's length) is committed to one file, so an interrupted run resumes from there
and ends with the bits of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from sublora.core.errors import TrainingError


@dataclass
class Encoded:
    """Token ids (N, T) padded with the end-of-text id, lengths (N,), labels (N,)."""

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.numel())

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The examples at ``index``, cut to the longest of them (less padding to compute)."""
        lengths = self.lengths[index]
        width = int(lengths.max())
        return self.ids[index, :width], lengths, self.labels[index]


def encode(texts: list[str], labels: list[int], tokenizer, block_size: int) -> Encoded:
    """Each text as its first ``block_size`` tokens; an empty text is the end-of-text token alone."""
    ids = torch.full((len(texts), block_size), tokenizer.eot_id, dtype=torch.long)
    lengths = torch.ones(len(texts), dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = torch.as_tensor(tokenizer.encode(text)[:block_size], dtype=torch.long)
        if tokens.numel():
            ids[i, : tokens.numel()] = tokens
            lengths[i] = tokens.numel()
    return Encoded(ids, lengths, torch.as_tensor(labels, dtype=torch.long))


@torch.inference_mode()
def predict(model, data: Encoded, index: torch.Tensor | None = None, batch_size: int = 64,
            theta: torch.Tensor | None = None) -> torch.Tensor:
    """Logits (n, C) of the examples at ``index`` (default all), in eval mode, in order."""
    was_training = model.training
    model.eval()
    theta = model.flat_params() if theta is None else theta
    index = torch.arange(len(data)) if index is None else torch.as_tensor(index, dtype=torch.long)
    out = []
    for start in range(0, index.numel(), batch_size):
        ids, lengths, _ = data.take(index[start:start + batch_size])
        out.append(model(ids, lengths, theta=theta).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(model, data: Encoded, index: torch.Tensor | None = None, batch_size: int = 64) -> float:
    index = torch.arange(len(data)) if index is None else index
    logits = predict(model, data, index, batch_size)
    return float((logits.argmax(-1) == data.labels[index]).double().mean())


def fixed_index(n: int, k: int, seed: int) -> torch.Tensor:
    """``k`` distinct examples of ``n`` (all when k >= n), seeded: the periodic estimate's sample."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


@dataclass
class FitResult:
    steps: int
    seconds: float
    final_loss: float
    train_accuracy: float
    val_accuracy: float


#: Steps between two commits of the training state (a few KB to MB: w, AdamW's moments, generators).
CHECKPOINT_EVERY = 50


def fit(model, train: Encoded, val: Encoded, config, metrics_path: Path | None = None,
        on_step: Callable[[int, dict], None] | None = None, state_path: Path | None = None) -> FitResult:
    """Train w (and nothing else) on the training examples; return accuracies on every example.

    ``state_path``: where the training state is committed every ``CHECKPOINT_EVERY`` steps; when it holds
    one, training resumes from it (the caller checks it belongs to the same settings)."""
    from sublora.core.train import lr_at

    tc = config.train
    torch.set_num_threads(tc.threads)
    model.train()
    optimizer = torch.optim.AdamW([model.w], lr=tc.lr, betas=(0.9, 0.99), weight_decay=tc.weight_decay)
    gen = torch.Generator().manual_seed(tc.seed)
    probe_train = fixed_index(len(train), tc.eval_examples, tc.seed + 1)
    probe_val = fixed_index(len(val), tc.eval_examples, tc.seed + 2)
    t0, loss_value = time.perf_counter(), math.nan

    def log(event: dict) -> None:
        if metrics_path is not None:
            with metrics_path.open("a") as f:
                f.write(json.dumps(event) + "\n")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tc.seed + 2_000_003)  # dropout, if the base has any
        first = 1
        if state_path is not None and state_path.is_file():
            first, loss_value, done_seconds = _restore(state_path, model, optimizer, gen, metrics_path)
            t0 -= done_seconds
        for step in range(first, tc.max_steps + 1):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step - 1, tc)
            ids, lengths, labels = train.take(torch.randint(0, len(train), (tc.batch_size,), generator=gen))
            loss = F.cross_entropy(model(ids, lengths), labels)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingError(f"Loss became {loss_value} at step {step}.",
                                    hint=f"Lower --train.lr (now {tc.lr:g}).")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([model.w], tc.grad_clip)
            optimizer.step()
            event = {"event": "train", "step": step, "loss": loss_value, "lr": lr_at(step - 1, tc),
                     "elapsed": round(time.perf_counter() - t0, 3)}
            if step % tc.eval_interval == 0 or step == tc.max_steps:
                event.update(event="eval", train_accuracy=accuracy(model, train, probe_train),
                             val_accuracy=accuracy(model, val, probe_val))
            if event["event"] == "eval" or step % 25 == 0:
                log(event)
            if state_path is not None and step % CHECKPOINT_EVERY == 0 and step < tc.max_steps:
                _commit(state_path, step, model, optimizer, gen, loss_value, time.perf_counter() - t0, metrics_path)
            if on_step is not None:
                on_step(step, event)
    seconds = time.perf_counter() - t0
    model.eval()
    return FitResult(tc.max_steps, seconds, loss_value, accuracy(model, train, accuracy_index(len(train), tc.seed)),
                     accuracy(model, val))


def _commit(path: Path, step: int, model, optimizer, gen: torch.Generator, loss_value: float, seconds: float,
            metrics_path: Path | None) -> None:
    """The state after ``step`` in one atomically written file: what resuming needs to continue bit for bit."""
    import io

    from sublora.core.checkpoint import write_atomic

    buffer = io.BytesIO()
    torch.save({"format": "sublora-finetune-state/1", "step": step, "loss": loss_value, "seconds": seconds,
                "hypothesis": {k: v.detach().clone() for k, v in model.hypothesis().items()},
                "optimizer": optimizer.state_dict(), "batches": gen.get_state(), "rng": torch.get_rng_state(),
                "metrics_bytes": metrics_path.stat().st_size if metrics_path is not None and metrics_path.is_file()
                else 0}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def _restore(path: Path, model, optimizer, gen: torch.Generator, metrics_path: Path | None) -> tuple[int, float, float]:
    """Load a committed state; cut the metrics back to it. Returns (next step, last loss, seconds so far)."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        step = int(state["step"])
        with torch.no_grad():
            model.load_hypothesis(state["hypothesis"])
        optimizer.load_state_dict(state["optimizer"])
    except Exception as exc:  # noqa: BLE001 - any damage: one clear error
        raise TrainingError(f"The finetuning state {path} cannot be resumed ({type(exc).__name__}: {exc}).",
                            hint=f"Delete {path.parent.parent} and start again.") from exc
    gen.set_state(state["batches"])
    torch.set_rng_state(state["rng"])
    if metrics_path is not None and metrics_path.is_file():
        with metrics_path.open("r+b") as f:  # events logged after the commit are logged again
            f.truncate(int(state["metrics_bytes"]))
    return step + 1, float(state["loss"]), float(state["seconds"])


#: training examples the reported training accuracy is measured on (every one when fewer)
TRAIN_ACCURACY_EXAMPLES = 4000


def accuracy_index(n: int, seed: int) -> torch.Tensor:
    """The fixed, seeded training examples of the reported training accuracy (the bound's own sample is
    separate: its empirical error is in the certificate)."""
    return fixed_index(n, TRAIN_ACCURACY_EXAMPLES, seed + 3)


def save_hypothesis(model, path: Path) -> None:
    """w (and any projector-owned tensor) after training, as safetensors: the continuous hypothesis."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.hypothesis().items()}, str(path))


def load_hypothesis(model, path: Path) -> None:
    """Load what ``save_hypothesis`` wrote into ``model``."""
    from safetensors.torch import load_file

    model.load_hypothesis(load_file(str(path)))


def write_config_yaml(path: Path, config) -> None:
    """The resolved config, human-readable, as pretraining writes RUN/config.yaml."""
    import yaml

    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
