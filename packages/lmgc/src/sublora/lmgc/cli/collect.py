"""`sublora lmgc collect`: train a ConvNet or MLP on the bundled digits, save gradients every N steps."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def collect(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write (must be new or empty).")],
    network: Annotated[str, typer.Option("--network", help="convnet (the reference's ConvNet) or mlp.")] = "convnet",
    steps: Annotated[int, typer.Option("--steps", help="Optimizer steps (batch 128).")] = 500,
    grad_interval: Annotated[int, typer.Option("--grad-interval", help="Save the gradients every this many steps.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initialization and the batch order.")] = 0,
    width: Annotated[Optional[int], typer.Option("--width", help="Channels / hidden units (default 128).")] = None,
    depth: Annotated[Optional[int], typer.Option("--depth", help="Conv blocks (default 3) / hidden layers (default 2).")] = None,
    lr: Annotated[float, typer.Option("--lr", help="Peak SGD learning rate (cosine to 0).")] = 0.1,
    threads: Annotated[int, typer.Option("--threads", help="torch threads (recorded: the bits may depend on it).")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Replace the gradient files in a non-empty --out.")] = False,
) -> None:
    """Train a ConvNet or MLP on the bundled 8x8 digits (offline); save every tensor's gradient every --grad-interval steps and the final weights."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sublora.cli.console import err, out as stdout
    from sublora.core.errors import RunInterrupted
    from sublora.lmgc.collect import collect as collect_fn
    from sublora.lmgc.collect import make_config

    config = make_config(network=network, steps=steps, grad_interval=grad_interval, seed=seed, width=width,
                         depth=depth, lr=lr, threads=threads)
    bar = Progress(TextColumn("[bold]collect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[info]}"), console=err)
    done = 0
    with bar:
        task = bar.add_task("collect", total=steps, info="")

        def progress(step: int, total: int, info: str) -> None:
            nonlocal done
            done = step
            if step == total or step % 10 == 0:
                bar.update(task, completed=step, info=info)

        try:
            result = collect_fn(config, out, force=force, progress=progress,
                                command=" ".join(["sublora", *sys.argv[1:]]))
        except KeyboardInterrupt:
            raise RunInterrupted(f"interrupted at step {done} of {steps}; the checkpoints so far are in {out} "
                                 "(index.json lists them); rerun with --force to collect again.", step=done) from None
    stdout.print(
        f"{config.network}: {result.checkpoints} gradient checkpoints of {result.bytes_per_checkpoint:,} bytes "
        f"({result.total_bytes / 1e6:.2f} MB) + final weights in {result.out}; {steps} steps in "
        f"{result.seconds:.1f} s, final loss {result.final_loss:.4f}, test accuracy {100 * result.test_accuracy:.1f} %",
        highlight=False)
