"""Train a small network on the bundled 8x8 digits and save its gradients every N steps, offline.

The reference's recipe scaled down: SGD (lr 0.1, momentum 0.9, weight decay 5e-4), cosine
decay of the learning rate over the run, batch 128, cross-entropy. The data is scikit-learn's
digits (1,797 images shipped inside the package, never downloaded), split once by a fixed seed
into 1,437 training and 360 test images, so runs with other training seeds share the split. Each
epoch is a seeded permutation of the training images cut into full batches (the remainder is
left out of that epoch). After the backward pass of optimizer step k (1-based) with
k % grad_interval == 0, the gradient of every parameter tensor is written (before the step,
as the reference does), in state_dict order; the weights are written at the end.
The same config and thread count give the same bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sublora.core.component import validation_message
from sublora.core.errors import ConfigError, DataError

DATASET = "sklearn-digits-8x8"
SPLIT_SEED = 20240917  #: the train/test split of the digits; fixed, so every run holds out the same images
TEST_IMAGES = 360


class CollectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    network: str = Field("convnet", description="convnet or mlp.")
    steps: int = Field(500, ge=1, description="Optimizer steps.")
    grad_interval: int = Field(50, ge=1, description="Save the gradients after every this many optimizer steps.")
    width: int | None = Field(None, ge=1, description="Channels (convnet) or hidden units (mlp); default 128.")
    depth: int | None = Field(None, ge=0, description="Conv blocks (convnet, default 3) or hidden layers (mlp, default 2).")
    batch_size: int = Field(128, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    seed: int = Field(0, description="Seed of the initialization and of the batch order.")
    threads: int = Field(1, ge=1, description="torch threads (the gradients' bits may depend on it: recorded).")

    @model_validator(mode="after")
    def _some_gradients(self) -> "CollectConfig":
        if self.grad_interval > self.steps:
            raise ValueError(f"grad_interval ({self.grad_interval}) > steps ({self.steps}) saves no gradients; "
                             "lower --grad-interval or raise --steps")
        return self


@dataclass
class CollectResult:
    out: Path
    checkpoints: int
    bytes_per_checkpoint: int
    total_bytes: int
    seconds: float
    final_loss: float
    test_accuracy: float


def make_config(**fields) -> CollectConfig:
    try:
        return CollectConfig(**fields)
    except Exception as exc:
        raise ConfigError(f"Invalid collect settings: {validation_message(exc)}.",
                          hint="Fix the option (`sublora lmgc collect --help` lists them).") from exc


def load_digits():
    """(x_train, y_train, x_test, y_test) as float32 (N, 1, 8, 8) in [0, 1] and int64 labels."""
    import numpy as np
    import torch

    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError as exc:
        raise DataError("The digits data set comes with scikit-learn, which is not installed.",
                        hint='pip install "sublora-lmgc[digits]"') from exc
    digits = sk_digits()
    x = torch.from_numpy((digits.data / 16.0).astype(np.float32)).reshape(-1, 1, 8, 8)
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, train = order[:TEST_IMAGES], order[TEST_IMAGES:]
    return x[train], y[train], x[test], y[test]


def collect(config: CollectConfig, out: str | Path, *, force: bool = False,
            progress: Callable[[int, int, str], None] | None = None, command: str | None = None) -> CollectResult:
    """Train ``config.network`` for ``config.steps`` steps, writing gradients and final weights into ``out``."""
    import torch
    import torch.nn.functional as F

    from sublora.core.gradlog import GradLog
    from sublora.lmgc.networks import build_network

    torch.set_num_threads(config.threads)
    x_train, y_train, x_test, y_test = load_digits()
    if config.batch_size > len(y_train):
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {len(y_train)} training images.")
    net = build_network(config.network, config.width, config.depth, seed=config.seed)
    net.train()
    named = list(net.named_parameters())
    source = {"kind": "sublora lmgc collect", "network": config.network, "width": net.width, "depth": net.depth,
              "dataset": DATASET, "train_images": len(y_train), "test_images": len(y_test), "split_seed": SPLIT_SEED,
              "parameters": sum(p.numel() for _, p in named), "config": config.model_dump(),
              "gradient": "of the mean cross-entropy of one batch, after backward, before the optimizer step",
              **({"command": command} if command else {})}
    log = GradLog.create(out, source, [(n, tuple(p.shape)) for n, p in named], force=force,
                         seeds={"seed": config.seed, "split_seed": SPLIT_SEED},
                         versions=_versions())
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    batches = _batches(len(y_train), config.batch_size, torch.Generator().manual_seed(config.seed))
    start, loss_value = time.perf_counter(), float("nan")
    for step in range(1, config.steps + 1):
        for group in optimizer.param_groups:  # cosine from lr to 0 over the run
            group["lr"] = 0.5 * config.lr * (1.0 + math.cos(math.pi * (step - 1) / config.steps))
        idx = next(batches)
        loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step % config.grad_interval == 0:
            log.add(step, {n: p.grad for n, p in named})
        optimizer.step()
        loss_value = loss.item()
        if progress is not None:
            progress(step, config.steps, f"loss {loss_value:.4f}")
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        accuracy = (net(x_test).argmax(1) == y_test).float().mean().item()
    log.set_weights(net.state_dict(), config.steps)
    log.update_source(final_train_loss=loss_value, test_accuracy=accuracy, seconds=round(seconds, 2))
    per = 4 * sum(p.numel() for _, p in named)
    n = len(log.index["checkpoints"])
    return CollectResult(Path(out), n, per, per * n, seconds, loss_value, accuracy)


def _versions() -> dict[str, str]:
    from importlib import metadata

    from sublora.core.manifest import versions

    out = versions()
    for name in ("sublora-lmgc", "scikit-learn"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _batches(n: int, batch_size: int, generator):
    """Seeded epochs: a permutation of the n images cut into full batches, forever."""
    import torch

    while True:
        order = torch.randperm(n, generator=generator)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]
