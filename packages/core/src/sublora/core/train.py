"""Training in the subspace: read top to bottom, as nanoGPT's train.py.

config -> lock -> threads and seeds -> data -> model -> optimizer -> (resume) -> loop
with warmup + cosine LR, gradient accumulation, periodic evaluation, best and
resumable checkpoints, one metrics line per interval. The projection P w is
computed once per optimizer step, not once per micro-batch.

An interrupted run resumes to the bits of an uninterrupted one. A step has two
halves: the update (w, optimizer, batch sampler and dropout RNG move to step N)
and its duties (log line, evaluation and best model, checkpoint). After each half
the loop takes a snapshot. A checkpoint commits a snapshot: state.pt first (one
atomic rename), then last/best.safetensors are published from it. Ctrl-C (any
KeyboardInterrupt) commits the last snapshot, never half a step or evaluation; a
resume reloads it, republishes the files, cuts metrics.jsonl back to it and first
does the duties still pending.

Several processes (torchrun, `sublora train --nproc N`; sublora.core.distributed) train one run: each
rank computes its share of the step's micro-batches, one all-reduce sums the gradient of w, and rank 0
alone evaluates, logs and commits. A GPU trains under bf16 autocast with fused AdamW.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml

from sublora.core import distributed
from sublora.core.checkpoint import (TRAINING_NEUTRAL_FIELDS, canonical, checkpoint_bytes, load_checkpoint, load_into,
                                     parse_checkpoint, training_identity, write_atomic)
from sublora.core.config import RunConfig
from sublora.core.errors import CheckpointError, DataError, RunDirError, RunInterrupted, TrainingError
from sublora.core.manifest import config_diff, config_hash, describe_diff, new_manifest, read_json, write_json
from sublora.core.rundir import RunDir
from sublora.core.runlock import LOCK_NAME, run_lock

LN2 = math.log(2.0)
# Fields that may differ when resuming an interrupted run: they do not change what training produces.
RESUMABLE_CHANGES = TRAINING_NEUTRAL_FIELDS
FINISHED = ("trained", "bounded", "verified")
STATE_FORMAT = "sublora-state/2"
DROPOUT_SEED_OFFSET = 2_000_003  # dropout's seeds derive from train.seed + this (the batches use train.seed)


def dropout_seed(seed: int, micro_batch: int) -> int:
    """The global RNG's seed for one micro-batch (its index counted over the whole run): dropout masks
    then depend on which micro-batch is computed, not on which process computes it."""
    return (DROPOUT_SEED_OFFSET + seed * 2**32 + micro_batch) % 2**64


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
def estimate_loss(model, data, config: RunConfig, batches: int | None = None, amp=None) -> dict[str, float]:
    """Mean loss (nats and bits/token) on fixed, seeded batches of each split, in eval mode, on the model's
    device (``amp``: an autocast context to evaluate under, as training runs)."""
    was_training = model.training
    model.eval()
    theta = model.flat_params()
    device = model.w.device
    out = {}
    for split in ("train", "val"):
        gen = torch.Generator().manual_seed(config.train.seed + 1_000_003)
        losses = []
        for _ in range(batches or config.train.eval_batches):
            x, y = data.get_batch(split, config.train.batch_size, config.model.block_size, gen)
            x, y = _to(x, device), _to(y, device)
            with amp or nullcontext():
                losses.append(model.loss(x, y, theta).item())
        out[f"{split}_loss"] = sum(losses) / len(losses)
        out[f"{split}_bpt"] = out[f"{split}_loss"] / LN2
    model.train(was_training)
    return out


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU batch on ``device`` (through pinned memory to a GPU, so the copy overlaps compute)."""
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def _prepare_run_dir(rd: RunDir, config: RunConfig) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(manifest, state) of an interrupted run of these settings to resume, (None, None) to start afresh.

    Refuses a finished run, an interrupted one trained with settings that change the result
    (naming them), and a directory that is not a run. A run that never completed a step
    holds nothing to keep: it starts again with the new settings.
    """
    if rd.manifest.is_file():
        manifest = rd.read_manifest()
        diff = config_diff(rd.config(), config, exclude=RESUMABLE_CHANGES)
        if manifest.get("status") in FINISHED:
            other = f" (trained with other settings: {describe_diff(diff)})" if diff else ""
            raise RunDirError(
                f"{rd.root} already holds a finished run (status: {manifest['status']}){other}.",
                hint="Choose a new --out directory, or use `sublora bound`/`sublora show` on this one.",
            )
        state = _load_state(rd)
        if state is None or int(state["step"]) == 0:
            return None, None
        if diff:
            raise RunDirError(
                f"{rd.root} holds an interrupted run (step {state['step']}) with a different config: "
                f"{describe_diff(diff)}.",
                hint="Resume it with its own settings (drop these overrides), or choose a new --out directory.",
            )
        return manifest, state
    if any(not p.name.startswith((LOCK_NAME, ".state.pt.tmp")) for p in rd.root.iterdir()):
        raise RunDirError(f"{rd.root} exists and is not a sublora run directory; refusing to write into it.",
                          hint="Choose a new or empty --out directory.")
    return None, None


def _load_state(rd: RunDir) -> dict[str, Any] | None:
    if not rd.state.is_file():
        return None
    try:
        state = torch.load(rd.state, weights_only=True, map_location="cpu")
        int(state["step"])
        return state
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes torch.load raise
        raise CheckpointError(
            f"{rd.state} is damaged and cannot be resumed from ({type(exc).__name__}: {exc}).",
            hint=f"Train into a new --out directory, or delete {rd.checkpoint_dir} to restart this run from step 0.",
        ) from exc


@contextmanager
def _deferred_interrupts():
    """Hold Ctrl-C (and a SIGTERM the CLI turned into one) while a commit is written; raise it after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if callable(handler):  # only signals Python handles; the default SIGTERM still kills
            previous[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            raise KeyboardInterrupt


def _file_size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _cut_metrics(rd: RunDir, size: int | None, step: int) -> dict[int, float]:
    """Drop metrics lines written after the committed step, so a resume logs each event once.

    Returns the training loss of each dropped train line (a state.pt from before sublora-state/2
    has no record of its last step's loss).
    """
    if not rd.metrics.is_file():
        return {}
    if size is not None:  # the exact length at the commit
        if _file_size(rd.metrics) > size:
            os.truncate(rd.metrics, size)
        return {}
    kept, dropped = [], {}  # no length recorded: keep the events up to ``step``
    for line in rd.metrics.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
            if event.get("step", 0) <= step:
                kept.append(line + "\n")
            elif event.get("event") == "train":
                dropped[int(event["step"])] = float(event["loss"])
        except (ValueError, AttributeError, KeyError, TypeError):
            continue
    rd.metrics.write_text("".join(kept))
    return dropped


def train(config: RunConfig, run_dir: str | Path, callbacks: TrainCallbacks | None = None,
          data_progress=None) -> TrainResult:
    """Train into ``run_dir``, or resume the interrupted run there, holding the directory's lock.

    Under torchrun every rank calls this: rank 0 takes the lock, checks the directory and prepares the
    data, and hands the others what they need; only rank 0 writes into the run directory.
    """
    from sublora.core.data import ensure_prepared

    rd = RunDir(Path(run_dir))
    with distributed.session(config.train) as place, ExitStack() as stack:
        distributed.check_accum(config.train.grad_accum, place.world_size)

        def begin():
            stack.enter_context(run_lock(rd.root))
            previous, state = _prepare_run_dir(rd, config)
            return previous, state, ensure_prepared(config.data, progress=data_progress)

        previous, state, data_dir = place.share(begin)
        return _train(config, rd, callbacks or _Silent(), place, previous, state, data_dir)


def _train(config: RunConfig, rd: RunDir, cb: TrainCallbacks, place: distributed.Placement,
           previous: dict[str, Any] | None, state: dict[str, Any] | None, data_dir: Path) -> TrainResult:
    from sublora.core.build import build_model
    from sublora.core.data import PreparedData

    tc = config.train
    main = place.is_main
    torch.set_num_threads(tc.threads)
    data = PreparedData.open(data_dir)
    recorded = (previous or {}).get("data", {}).get("sha256")
    if recorded and data.meta.get("sha256") != recorded:
        raise DataError(f"The prepared data in {data.path} is not the data {rd.root} was trained on so far.",
                        hint="Point --data.dir at the original data, or re-prepare it with the run's own config.")
    model = build_model(config, data.vocab_size, data.eot_id).to(place.device)  # theta0 and P: built here, per rank
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    owned = [p for p in model.projector.parameters() if p.requires_grad]
    groups = [{"params": [model.w], "lr_scale": 1.0}]
    if owned:  # e.g. learned gates: their own learning rate, no weight decay
        groups.append({"params": owned, "lr_scale": float(model.projector.lr_scale), "weight_decay": 0.0})
    fused = place.device.type == "cuda"  # one kernel for the whole update on a GPU
    optimizer = torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay,
                                  fused=fused or None)
    batch_gen = torch.Generator().manual_seed(tc.seed)  # on the CPU: the same batches on every device
    reduce = distributed.GradientSum([model.w, *owned], place)
    amp = distributed.autocast(place)

    rng_devices = [place.device.index or 0] if place.device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # dropout draws from the global RNG: seeded per micro-batch
        step, pending, step_loss, best_val, best_file, elapsed_before = 0, False, 0.0, None, None, 0.0
        grad_norms: dict[str, float] = {}  # of the step whose log line is pending (_grad_norms); in the snapshot
        if state is not None:
            step, pending, step_loss, best_val, best_file, elapsed_before = _resume(
                rd, state, model, optimizer, batch_gen, config, publish=main)
            grad_norms.update(state.get("grad_norms") or {})
            for group in optimizer.param_groups:  # a run may move between devices: the update suits this one
                group["fused"] = fused or None
        elif main:  # a fresh start, maybe over a run that never completed a step
            for leftover in (rd.metrics, rd.last, rd.best, rd.state):
                leftover.unlink(missing_ok=True)

        manifest = grad_log = None
        if main:
            manifest = previous or new_manifest(config, status="training")
            placed = _placements(manifest, place, step, previous is not None)
            manifest.update(config=config.to_dict(), config_sha256=config_hash(config), status="training",
                            data=data.record(),
                            model={"D": model.D, "d": model.d, "layout": model.layout.fingerprint(), "projector": model.projector.config.spec},
                            **place.record(), placements=placed,
                            allreduce={"bytes_per_step": reduce.bytes_per_step, "numbers": reduce.numel + 1 if place.world_size > 1 else 0,
                                       "what": "sum of the gradients of w and projector-owned tensors, plus the step's loss"})
            write_json(rd.manifest, manifest)
            rd.config_yaml.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
            if len(placed) > 1 and placed[-1]["from_step"] == step and state is not None:
                with rd.metrics.open("a") as f:  # a resume on another world size, device or dtype: said once
                    f.write(json.dumps({"event": "placement", "step": step, **placed[-1], "previous": placed[-2]}) + "\n")
            grad_log = _grad_log(rd, config, model, manifest, step if state is not None else None) if tc.collect_grads else None
        collect = bool(tc.collect_grads)

        tokens_per_step = tc.batch_size * tc.grad_accum * config.model.block_size
        t_start = time.perf_counter()
        t_window, tokens_window = t_start, 0

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - t_start

        def log(event: dict) -> None:
            with rd.metrics.open("a") as f:
                f.write(json.dumps(event) + "\n")

        def snapshot() -> dict[str, Any]:
            """Everything a resume needs to continue exactly from here (copies: the loop goes on).

            The same on every rank, whatever the number of ranks: only rank 0 keeps one."""
            if not main:
                return {"step": step}
            return {"step": step, "pending": pending, "step_loss": step_loss, "grad_norms": dict(grad_norms),
                    "best_val": best_val, "best": best_file,
                    "hypothesis": {k: v.detach().clone() for k, v in model.hypothesis().items()},
                    "report": model.projector.report(), "optimizer": copy.deepcopy(optimizer.state_dict()),
                    "batch_generator": batch_gen.get_state(), "torch_rng": torch.get_rng_state(),
                    "metrics_size": _file_size(rd.metrics), "elapsed": elapsed()}

        def after_duties(snap: dict[str, Any]) -> dict[str, Any]:
            """The snapshot once a step's duties are done: they move only the best model and the log."""
            if not main:
                return snap
            return {**snap, "pending": False, "best_val": best_val, "best": best_file, "torch_rng": torch.get_rng_state(),
                    "metrics_size": _file_size(rd.metrics), "elapsed": elapsed()}

        def commit(snap: dict[str, Any]) -> None:
            """state.pt (one atomic rename), then the checkpoint files it holds; metrics cut back to it (rank 0)."""
            if not main:
                return
            record = {k: v for k, v in snap.items() if k not in ("hypothesis", "report")}
            record.update(format=STATE_FORMAT, last=checkpoint_bytes(model, config, snap["step"], None,
                                                                    snap["hypothesis"], snap["report"]))
            with _deferred_interrupts():
                rd.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                tmp = rd.state.with_name(".state.pt.tmp")
                torch.save(record, tmp)
                tmp.replace(rd.state)
                _publish(rd, record)

        def update() -> float:
            """The first half of a step: one optimizer step on grad_accum micro-batches; returns the loss.

            The step's micro-batches are one sequence drawn on every rank; rank r computes r, r + N, ...
            and one all-reduce sums the gradients of w (the projection is never communicated)."""
            nonlocal tokens_window
            distributed.maybe_fail(place, step)
            lr = lr_at(step, tc)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            # One projection per optimizer step: micro-batches backprop into theta, then theta into w.
            theta = model.flat_params()
            theta_leaf = theta.detach().requires_grad_(True)
            loss_acc = torch.zeros((), dtype=torch.float64, device=place.device)
            for k in range(tc.grad_accum):
                x, y = data.get_batch("train", tc.batch_size, config.model.block_size, batch_gen)
                if k % place.world_size != place.rank:
                    continue  # another rank's micro-batch: drawn only to keep the stream in step
                torch.manual_seed(dropout_seed(tc.seed, step * tc.grad_accum + k))
                x, y = _to(x, place.device), _to(y, place.device)
                with amp:
                    loss = model.loss(x, y, theta_leaf) / tc.grad_accum
                loss.backward()
                loss_acc += loss.detach().double()
            theta.backward(theta_leaf.grad)
            loss_sum = reduce(float(loss_acc))  # w.grad (and owned tensors' grads) summed over the ranks
            if not math.isfinite(loss_sum):
                raise TrainingError(
                    f"Loss became {loss_sum} at step {step}.",
                    hint=f"Lower --train.lr (now {tc.lr:g}) or set --train.grad_clip; the last good checkpoint is in {rd.checkpoint_dir}.",
                )
            if collect and (step + 1) % tc.collect_grads == 0:  # before clipping: the raw gradient
                theta_grad = reduce.sum_tensor(theta_leaf.grad)
                if grad_log is not None:
                    grad_log.add(step + 1, _gradients(model, theta_grad))
            if (step + 1) % tc.log_interval == 0 or step + 1 == tc.max_steps:  # logged with the step, unclipped
                grad_norms.clear()
                grad_norms.update(_grad_norms(model))
            if tc.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            tokens_window += tokens_per_step
            return loss_sum

        def duties() -> None:
            """The second half of step ``step``: its log line, its evaluation and best model."""
            nonlocal t_window, tokens_window, best_val, best_file
            lr = lr_at(step - 1, tc)
            if step % tc.log_interval == 0 or step == tc.max_steps:
                now = time.perf_counter()
                metrics = {"loss": step_loss, "bpt": step_loss / LN2, "lr": lr,
                           "tokens_per_s": tokens_window / max(now - t_window, 1e-9), **grad_norms}
                t_window, tokens_window = now, 0
                log({"event": "train", "step": step, **metrics, "elapsed": elapsed_before + now - t_start})
                cb.on_step(step, metrics)
            else:
                cb.on_step(step, {"loss": step_loss, "lr": lr})
            if step % tc.eval_interval == 0 or step == tc.max_steps:
                metrics = estimate_loss(model, data, config, amp=amp)
                report = model.projector.report()
                log({"event": "eval", "step": step, **metrics, **({"projector": report} if report else {})})
                cb.on_eval(step, metrics)
                if best_val is None or metrics["val_loss"] < best_val:
                    best_val = metrics["val_loss"]
                    best_file = checkpoint_bytes(model, config, step, best_val)

        boundary = committed = None
        try:
            boundary = snapshot()
            cb.on_start(step, tc.max_steps)
            while True:
                if pending:
                    if main:  # the other ranks wait for it at the next step's all-reduce
                        duties()
                    pending = False
                    boundary = after_duties(boundary)
                    if step % tc.checkpoint_interval == 0 or step == tc.max_steps:
                        commit(boundary)
                        committed = boundary
                    if tc.time_limit and place.agree(time.perf_counter() - t_start > tc.time_limit):
                        break
                if step >= tc.max_steps:
                    break
                step_loss = update()
                step += 1
                pending = True
                boundary = snapshot()
            if committed is not boundary:
                commit(boundary)
        except (KeyboardInterrupt, distributed.RankLost) as exc:
            if boundary is None:
                raise
            try:
                commit(boundary)  # every rank finished the boundary's step: it is the run's, whatever failed after
            except KeyboardInterrupt:  # a second Ctrl-C: this commit landed whole, or the one before stands
                pass
            if isinstance(exc, distributed.RankLost):
                raise distributed.RankLost(f"{exc.message} The run is saved at step {boundary['step']} in {rd.root}.",
                                           hint=exc.hint) from exc
            raise RunInterrupted(
                f"interrupted at step {boundary['step']} of {tc.max_steps}; the run is saved in {rd.root}: "
                "rerun the same command to resume.", step=boundary["step"]) from None
        finally:
            cb.on_end()

    seconds = elapsed()
    finished = step >= tc.max_steps
    if not main:
        return TrainResult(rd.root, step, finished, None, seconds, step * tokens_per_step / max(seconds, 1e-9))
    if grad_log is not None and finished:
        with torch.no_grad():
            grad_log.set_weights(_gradients(model, model.flat_params(), weights=True), step)
    manifest = read_json(rd.manifest)
    manifest.update(status="trained" if finished else "training",
                    projector_report=model.projector.report(),
                    training={"steps": step, "seconds": round(seconds, 2), "best_val_loss": best_val,
                              "best_val_bpt": None if best_val is None else best_val / LN2,
                              "threads": tc.threads, "world_size": place.world_size,
                              "allreduce_bytes": reduce.bytes_total})
    write_json(rd.manifest, manifest)
    return TrainResult(rd.root, step, finished, best_val, seconds, step * tokens_per_step / max(seconds, 1e-9))


def _placements(manifest: dict[str, Any], place: distributed.Placement, step: int, resumed: bool) -> list[dict[str, Any]]:
    """The run's placements (world size, device, dtype, each from a step on), with a new one when this
    process's differs from the one the resumed step was trained under."""
    now = place.record()
    history = [dict(p) for p in manifest.get("placements", [])] if resumed else []
    if resumed and not history:  # a run from before placements were recorded: one CPU process, float32
        history = [{"from_step": 0, "world_size": 1, "device": "cpu", "dtype": "float32", "backend": None}]
    while history and history[-1]["from_step"] >= step and step > 0:  # placements of no committed step
        history.pop()
    if not history or {k: history[-1].get(k) for k in now} != now:
        history.append({"from_step": step, **now})
    return history


def _resume(rd: RunDir, state: dict[str, Any], model, optimizer, batch_gen, config: RunConfig, publish: bool = True):
    """Load a committed state into the model, optimizer and RNGs; republish its files and cut the metrics
    back (``publish``: rank 0 only)."""
    step = int(state["step"])
    try:
        if "last" in state:
            tensors, metadata = parse_checkpoint(state["last"], f"checkpoint inside {rd.state}")
            load_into(model, config, tensors, metadata, f"in {rd.state}")
        else:  # a state.pt from before sublora-state/2 sits beside last.safetensors
            load_checkpoint(rd.last, model, config)
        optimizer.load_state_dict(state["optimizer"])
        batch_gen.set_state(state["batch_generator"])
        if state.get("torch_rng") is not None:
            torch.set_rng_state(state["torch_rng"])
    except CheckpointError:
        raise
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{rd.state} does not fit this run ({type(exc).__name__}: {exc}).",
                              hint=f"Train into a new --out directory, or delete {rd.checkpoint_dir} to restart "
                              "this run from step 0.") from exc
    if "best" in state:
        best_file, pending = state["best"], bool(state["pending"])
        if publish:
            _publish(rd, state)
    elif not publish:
        best_file, pending = None, True
    else:  # a state.pt from before sublora-state/2 does not say whether its step's evaluation was done: redo it
        best_file, pending = (canonical(rd.best.read_bytes()) if rd.best.is_file() else None), True
        state["step_loss"] = _cut_metrics(rd, None, step - 1).get(step, 0.0)  # its log line is written again
    return (step, pending, float(state.get("step_loss", 0.0)), state.get("best_val"), best_file,
            float(state.get("elapsed", 0.0)))


def _grad_tensors(model) -> list[tuple[str, tuple[int, ...]]]:
    """The tensors of RUN/grads in state_dict order: w, projector-owned parameters, then theta's LoRA tensors."""
    return ([("w", tuple(model.w.shape))]
            + [(f"projector.{n}", tuple(p.shape)) for n, p in model.projector.named_parameters()]
            + [(s.name, s.shape) for s in model.layout.slots])


def _grad_norms(model) -> dict[str, float]:
    """||grad_w L|| of this step before clipping, and of each block of w the projector names (``groups``: a
    fixed A/B allocation's two sides, seed 004), as ``grad_norm`` and ``grad_norm_A`` ...; logged with the step."""
    grad = model.w.grad
    if grad is None:
        return {}
    out = {"grad_norm": float(grad.detach().double().norm())}
    for name, part in model.projector.groups().items():
        out[f"grad_norm_{name}"] = float(grad.detach()[part].double().norm())
    return out


def _gradients(model, theta: torch.Tensor, weights: bool = False) -> dict[str, torch.Tensor]:
    """{name: tensor} in _grad_tensors' order: the parameters' .grad (or values, with ``weights``), and theta
    (its gradient, or its value theta0 + P w) cut into the LoRA tensors."""
    out = {"w": model.w.detach() if weights else model.w.grad}
    for n, p in model.projector.named_parameters():
        out[f"projector.{n}"] = p.detach() if weights else (p.grad if p.grad is not None else torch.zeros_like(p))
    out.update(model.param_dict(theta.detach()))
    return out


def _grad_log(rd: RunDir, config: RunConfig, model, manifest: dict[str, Any], resume_step: int | None):
    """RUN/grads for --collect-grads: new on a fresh start; on a resume, cut back to the resumed step."""
    from sublora.core.gradlog import GradLog

    source = {"kind": "sublora train", "run": str(rd.root), "interval": config.train.collect_grads,
              "config_sha256": manifest.get("config_sha256"), "data": manifest.get("data"), "model": manifest.get("model"),
              "gradient": "of the step's training loss (mean over grad_accum micro-batches) before clipping; the LoRA "
              "tensors' gradient is d loss / d theta, w's is P^T times it"}
    args = (rd.grads, source, _grad_tensors(model))
    kwargs = {"seeds": manifest.get("seeds"), "versions": manifest.get("versions")}
    if resume_step is None:
        return GradLog.create(*args, force=True, **kwargs)
    return GradLog.resume(*args, after_step=resume_step, **kwargs)


def _publish(rd: RunDir, snap: dict[str, Any]) -> None:
    """Write last/best.safetensors as the committed state holds them, and cut metrics.jsonl back to it."""
    write_atomic(rd.last, snap["last"])
    if snap["best"] is not None:
        write_atomic(rd.best, snap["best"])
    else:
        rd.best.unlink(missing_ok=True)
    _cut_metrics(rd, snap.get("metrics_size"), int(snap["step"]))


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
    path = rd.best if which == "best" else rd.last
    metadata = load_checkpoint(path, model, config)
    if metadata.get("training_identity", training_identity(config)) != training_identity(config):
        raise CheckpointError(
            f"{path} was trained under other settings than {rd.manifest} records (were two processes writing "
            f"{rd.root} at once?).",
            hint="Retrain into a new --out directory; this run's files do not belong together.")
    model.eval()
    return model, config, data
