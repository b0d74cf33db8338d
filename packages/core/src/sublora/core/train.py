"""Training in the subspace: read top to bottom, as nanoGPT's train.py.

config -> threads and seeds -> data -> model -> optimizer -> (resume) -> loop
with warmup + cosine LR, gradient accumulation, periodic evaluation, best and
resumable checkpoints, one metrics line per interval. The projection P w is
computed once per optimizer step, not once per micro-batch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from sublora.core.checkpoint import load_checkpoint, save_checkpoint
from sublora.core.config import RunConfig
from sublora.core.errors import DataError, RunDirError, TrainingError
from sublora.core.manifest import config_hash, new_manifest, read_json, write_json
from sublora.core.rundir import RunDir

LN2 = math.log(2.0)
# Fields that may differ when resuming an interrupted run.
RESUMABLE_CHANGES = {"train": {"time_limit", "max_steps", "threads"}, "bound": True, "data": {"dir"}}


class TrainCallbacks(Protocol):
    def on_start(self, start_step: int, max_steps: int) -> None: ...
    def on_step(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_eval(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_end(self) -> None: ...


class _Silent:
    def on_start(self, start_step, max_steps): pass
    def on_step(self, step, metrics): pass
    def on_eval(self, step, metrics): pass
    def on_end(self): pass


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    finished: bool
    best_val_loss: float | None
    seconds: float
    tokens_per_second: float


def lr_at(step: int, config) -> float:
    """Linear warmup, then cosine decay from lr to min_lr at max_steps."""
    if config.warmup_steps and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(config.max_steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / span, 1.0)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


@torch.inference_mode()
def estimate_loss(model, data, config: RunConfig, batches: int | None = None) -> dict[str, float]:
    """Mean loss (nats and bits/token) on fixed, seeded batches of each split, in eval mode."""
    was_training = model.training
    model.eval()
    theta = model.flat_params()
    out = {}
    for split in ("train", "val"):
        gen = torch.Generator().manual_seed(config.train.seed + 1_000_003)
        losses = []
        for _ in range(batches or config.train.eval_batches):
            x, y = data.get_batch(split, config.train.batch_size, config.model.block_size, gen)
            losses.append(model.loss(x, y, theta).item())
        out[f"{split}_loss"] = sum(losses) / len(losses)
        out[f"{split}_bpt"] = out[f"{split}_loss"] / LN2
    model.train(was_training)
    return out


def _prepare_run_dir(rd: RunDir, config: RunConfig) -> dict[str, Any] | None:
    """Return the existing manifest if this is a resumable run of the same config; refuse otherwise."""
    if rd.manifest.is_file():
        manifest = rd.read_manifest()
        if manifest.get("status") in ("trained", "bounded", "verified"):
            raise RunDirError(
                f"{rd.root} already holds a finished run (status: {manifest['status']}).",
                hint="Choose a new --out directory, or use `sublora bound`/`sublora show` on this one.",
            )
        previous = RunDir(rd.root).config()
        if config_hash(previous, RESUMABLE_CHANGES) != config_hash(config, RESUMABLE_CHANGES):
            raise RunDirError(
                f"{rd.root} holds an interrupted run with a different config.",
                hint="Resume it with its own config (omit overrides), or choose a new --out directory.",
            )
        return manifest
    if rd.root.exists() and any(rd.root.iterdir()):
        raise RunDirError(f"{rd.root} exists and is not a sublora run directory; refusing to write into it.",
                          hint="Choose a new or empty --out directory.")
    return None


def train(config: RunConfig, run_dir: str | Path, callbacks: TrainCallbacks | None = None,
          data_progress=None) -> TrainResult:
    from sublora.core.build import build_model
    from sublora.core.data import PreparedData, ensure_prepared

    cb = callbacks or _Silent()
    tc = config.train
    rd = RunDir(Path(run_dir))
    previous = _prepare_run_dir(rd, config)

    torch.set_num_threads(tc.threads)
    data = PreparedData.open(ensure_prepared(config.data, progress=data_progress))
    model = build_model(config, data.vocab_size, data.eot_id)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    owned = [p for p in model.projector.parameters() if p.requires_grad]
    groups = [{"params": [model.w], "lr_scale": 1.0}]
    if owned:  # e.g. learned gates: their own learning rate, no weight decay
        groups.append({"params": owned, "lr_scale": float(model.projector.lr_scale), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay)
    batch_gen = torch.Generator().manual_seed(tc.seed)

    step, best_val, elapsed_before = 0, None, 0.0
    if previous is not None and rd.state.is_file() and rd.last.is_file():
        load_checkpoint(rd.last, model, config)
        state = torch.load(rd.state, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        batch_gen.set_state(state["batch_generator"])
        step, best_val, elapsed_before = int(state["step"]), state.get("best_val"), float(state.get("elapsed", 0.0))

    rd.root.mkdir(parents=True, exist_ok=True)
    manifest = previous or new_manifest(config, status="training")
    manifest.update(config=config.to_dict(), config_sha256=config_hash(config), status="training",
                    data={"dir": str(data.path), **{k: data.meta.get(k) for k in ("config_key", "sha256", "vocab_size", "n_tokens", "n_documents")}},
                    model={"D": model.D, "d": model.d, "layout": model.layout.fingerprint(), "projector": model.projector.config.spec})
    write_json(rd.manifest, manifest)
    rd.config_yaml.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    def checkpoint(val_loss=None):
        save_checkpoint(rd.last, model, config, step, val_loss)
        tmp = rd.state.with_name(".state.pt.tmp")
        torch.save({"optimizer": optimizer.state_dict(), "batch_generator": batch_gen.get_state(), "step": step,
                    "best_val": best_val, "elapsed": elapsed_before + time.perf_counter() - t_start}, tmp)
        tmp.replace(rd.state)

    def log(event: dict) -> None:
        with rd.metrics.open("a") as f:
            f.write(json.dumps(event) + "\n")

    tokens_per_step = tc.batch_size * tc.grad_accum * config.model.block_size
    t_start = time.perf_counter()
    t_window, tokens_window = time.perf_counter(), 0
    cb.on_start(step, tc.max_steps)
    try:
        while step < tc.max_steps:
            lr = lr_at(step, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            # One projection per optimizer step: micro-batches backprop into theta, then theta into w.
            theta = model.flat_params()
            theta_leaf = theta.detach().requires_grad_(True)
            loss_sum = 0.0
            for _ in range(tc.grad_accum):
                x, y = data.get_batch("train", tc.batch_size, config.model.block_size, batch_gen)
                loss = model.loss(x, y, theta_leaf) / tc.grad_accum
                loss.backward()
                loss_sum += loss.item()
            if not math.isfinite(loss_sum):
                raise TrainingError(
                    f"Loss became {loss_sum} at step {step}.",
                    hint=f"Lower --train.lr (now {tc.lr:g}) or set --train.grad_clip; the last good checkpoint is in {rd.checkpoint_dir}.",
                )
            theta.backward(theta_leaf.grad)
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens_window += tokens_per_step

            if step % tc.log_interval == 0 or step == tc.max_steps:
                now = time.perf_counter()
                metrics = {"loss": loss_sum, "bpt": loss_sum / LN2, "lr": lr, "tokens_per_s": tokens_window / max(now - t_window, 1e-9)}
                t_window, tokens_window = now, 0
                log({"event": "train", "step": step, **metrics, "elapsed": elapsed_before + now - t_start})
                cb.on_step(step, metrics)
            else:
                cb.on_step(step, {"loss": loss_sum, "lr": lr})

            if step % tc.eval_interval == 0 or step == tc.max_steps:
                metrics = estimate_loss(model, data, config)
                report = model.projector.report()
                log({"event": "eval", "step": step, **metrics, **({"projector": report} if report else {})})
                cb.on_eval(step, metrics)
                if best_val is None or metrics["val_loss"] < best_val:
                    best_val = metrics["val_loss"]
                    save_checkpoint(rd.best, model, config, step, best_val)
            if step % tc.checkpoint_interval == 0 or step == tc.max_steps:
                checkpoint()
            if tc.time_limit and time.perf_counter() - t_start > tc.time_limit:
                break
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        cb.on_end()

    if step % tc.checkpoint_interval and step != tc.max_steps:
        checkpoint()
    seconds = elapsed_before + time.perf_counter() - t_start
    finished = step >= tc.max_steps
    manifest = read_json(rd.manifest)
    manifest.update(status="trained" if finished else "training",
                    projector_report=model.projector.report(),
                    training={"steps": step, "seconds": round(seconds, 2), "best_val_loss": best_val,
                              "best_val_bpt": None if best_val is None else best_val / LN2,
                              "threads": tc.threads})
    write_json(rd.manifest, manifest)
    return TrainResult(rd.root, step, finished, best_val, seconds, step * tokens_per_step / max(seconds, 1e-9))


def load_trained(run_dir: str | Path, which: str = "best"):
    """Rebuild a run's model in this process and load its checkpoint: (model, config, data)."""
    from sublora.core.build import build_model
    from sublora.core.data import PreparedData, ensure_prepared

    rd = RunDir(Path(run_dir))
    config = rd.config()
    torch.set_num_threads(config.train.threads)
    manifest = rd.read_manifest()
    recorded = manifest.get("data", {})
    data_dir = recorded.get("dir")
    data = PreparedData.open(Path(data_dir) if data_dir and Path(data_dir).is_dir() else ensure_prepared(config.data))
    if recorded.get("sha256") and data.meta.get("sha256") != recorded["sha256"]:
        raise DataError(
            f"The prepared data in {data.path} is not the data {rd.root} was trained on (train.bin/val.bin hashes differ).",
            hint="Point --data.dir at the original data, or re-prepare it with the run's own config.",
        )
    model = build_model(config, data.vocab_size, data.eot_id)
    load_checkpoint(rd.best if which == "best" else rd.last, model, config)
    model.eval()
    return model, config, data
