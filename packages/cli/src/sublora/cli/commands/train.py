"""`sublora train`: train w in the subspace, with progress, checkpoints and resume; on N processes with --nproc."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from sublora.cli.console import out
from sublora.cli.options import OVERRIDES_HELP, ConfigFile, OutDir, Preset, ProjectorOpt

NprocOpt = Annotated[int, typer.Option(
    "--nproc", min=1, metavar="N", help="Train with N processes (torchrun; gloo on CPU, NCCL on CUDA): "
    "train.grad_accum micro-batches per step are split over them. At most the machine's cores (GPUs).")]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", metavar="auto|cpu|cuda", help="Training device (as --train.device; auto = cuda when available).")]


def run_training(config, out_dir):
    from sublora.cli.progress import TrainingProgress, task_bar
    from sublora.core import distributed
    from sublora.core.data import ensure_prepared
    from sublora.core.runlock import run_lock

    if distributed.launched():  # a torchrun rank: rank 0 locks, checks and prepares inside train
        return _rank_training(config, out_dir)
    with run_lock(out_dir):  # before preparing data (and importing torch), so a busy or unusable --out fails at once
        distributed.resolve_device(config.train.device)  # no GPU for --device cuda: said before any work
        from sublora.core.train import LN2
        from sublora.core.train import train as train_fn

        with task_bar("prepare data") as data_progress:
            ensure_prepared(config.data, progress=data_progress)
        result = train_fn(config, out_dir, callbacks=TrainingProgress())
    _summary(result, LN2)
    return result


def _summary(result, ln2: float) -> None:
    state = "finished" if result.finished else "stopped early (resume with the same command)"
    best = f"{result.best_val_loss / ln2:.4f} bits/token" if result.best_val_loss is not None else "n/a"
    out.print(f"training {state}: {result.steps} steps in {result.seconds:.1f} s "
              f"({result.tokens_per_second:,.0f} tokens/s), best val {best}", highlight=False)


def _rank_training(config, out_dir):
    """One rank of a multi-process run. Rank 0 shows progress and reports; the others keep quiet about an
    error rank 0 reports too, and every rank keeps quiet under `sublora train --nproc` (which reports once)."""
    from sublora.cli.errors import exit_code
    from sublora.cli.progress import TrainingProgress
    from sublora.core import distributed
    from sublora.core.errors import SubloraError
    from sublora.core.train import LN2
    from sublora.core.train import train as train_fn

    main = distributed.env_rank() == 0
    try:
        result = train_fn(config, out_dir, callbacks=TrainingProgress() if main else None)
    except (SubloraError, KeyboardInterrupt) as exc:
        if os.environ.get(distributed.REPORT_ENV) or (not main and getattr(exc, "from_main", False)):
            raise typer.Exit(130 if isinstance(exc, KeyboardInterrupt) else exit_code(exc)) from exc
        raise
    finally:  # the work is saved: torchrun's SIGTERM to a rank that is exiting just ends it, with no traceback
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if main:
        _summary(result, LN2)
    return result


def _launch(ctx: typer.Context, nproc: int, config, out_dir: Path, config_file, projector, preset, collect_grads,
            device) -> None:
    """`sublora train --nproc N`: prepare the data here, then torchrun N ranks of the same command."""
    from sublora.cli.progress import task_bar
    from sublora.core import distributed
    from sublora.core.data import ensure_prepared

    distributed.check_nproc(nproc, config.train.device, config.train.threads)
    distributed.check_accum(config.train.grad_accum, nproc)
    with task_bar("prepare data") as data_progress:  # once, with a bar, before the ranks start
        ensure_prepared(config.data, progress=data_progress)
    args = ["train", "--out", str(out_dir), "--preset", preset]
    for flag, value in (("--config", config_file), ("--projector", projector), ("--collect-grads", collect_grads),
                        ("--device", device)):
        if value is not None:
            args += [flag, str(value)]
    distributed.launch(nproc, [*args, *ctx.args], Path(out_dir), config.train.threads)


def train(ctx: typer.Context, out_dir: OutDir, config_file: ConfigFile = None, projector: ProjectorOpt = None,
          preset: Preset = "default",
          collect_grads: Annotated[Optional[int], typer.Option(
              "--collect-grads", min=1, metavar="N", help="Save the gradients of w and the LoRA tensors every N steps "
              "into OUT/grads (as --train.collect_grads=N; docs/lmgc.md).")] = None,
          nproc: NprocOpt = 1, device: DeviceOpt = None) -> None:
    """Train a GPT-2 in a LoRA subspace (resumes an interrupted run in the same --out)."""
    from sublora.cli.options import resolve
    from sublora.core import distributed

    config = resolve(ctx, config_file, projector, preset)
    if collect_grads is not None:
        config.train.collect_grads = collect_grads
    if device is not None:
        config.train.device = _device(device)
    if nproc > 1 and not distributed.launched():
        _launch(ctx, nproc, config, out_dir, config_file, projector, preset, collect_grads, device)
        return
    run_training(config, out_dir)


def _device(value: str) -> str:
    from sublora.core.errors import ConfigError

    if value not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"Unknown device {value!r}.", hint="Use --device auto, cpu or cuda.")
    return value


train.__doc__ = (f"Train a GPT-2 in a LoRA subspace; resumes an interrupted run in the same --out. With --nproc N, "
                 f"N processes train it (torchrun). {OVERRIDES_HELP}")
