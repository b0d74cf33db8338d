"""`sublora verify RUN_DIR`: decode the compressed model and re-check the certificate."""

from __future__ import annotations

from sublora.cli.console import out
from sublora.cli.options import RunDirArg


def verify(run_dir: RunDirArg) -> None:
    """Decode model.slc, check hashes and sizes, recompute every bound, re-score a sample."""
    from sublora.bounds.verify import verify as verify_fn

    for check in verify_fn(run_dir):
        out.print(f"[green]ok[/] {check}", highlight=False)
    out.print("[bold green]certificate verified[/]")
