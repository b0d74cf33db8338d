"""`sublora train`: train w in the subspace, with progress, checkpoints and resume."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from sublora.cli.console import out
from sublora.cli.options import OVERRIDES_HELP, ConfigFile, OutDir, Preset, ProjectorOpt


def run_training(config, out_dir):
    from sublora.cli.progress import TrainingProgress, task_bar
    from sublora.core.data import ensure_prepared
    from sublora.core.runlock import run_lock
    from sublora.core.train import LN2
    from sublora.core.train import train as train_fn

    with run_lock(out_dir):  # before preparing data, so a busy or unusable --out fails at once
        with task_bar("prepare data") as data_progress:
            ensure_prepared(config.data, progress=data_progress)
        result = train_fn(config, out_dir, callbacks=TrainingProgress())
    state = "finished" if result.finished else "stopped early (resume with the same command)"
    best = f"{result.best_val_loss / LN2:.4f} bits/token" if result.best_val_loss is not None else "n/a"
    out.print(f"training {state}: {result.steps} steps in {result.seconds:.1f} s "
              f"({result.tokens_per_second:,.0f} tokens/s), best val {best}", highlight=False)
    return result


def train(ctx: typer.Context, out_dir: OutDir, config_file: ConfigFile = None, projector: ProjectorOpt = None,
          preset: Preset = "default",
          collect_grads: Annotated[Optional[int], typer.Option(
              "--collect-grads", min=1, metavar="N", help="Save the gradients of w and the LoRA tensors every N steps "
              "into OUT/grads (as --train.collect_grads=N; docs/lmgc.md).")] = None) -> None:
    """Train a GPT-2 in a LoRA subspace (resumes an interrupted run in the same --out)."""
    from sublora.cli.options import resolve

    config = resolve(ctx, config_file, projector, preset)
    if collect_grads is not None:
        config.train.collect_grads = collect_grads
    run_training(config, out_dir)


train.__doc__ = f"Train a GPT-2 in a LoRA subspace; resumes an interrupted run in the same --out. {OVERRIDES_HELP}"
