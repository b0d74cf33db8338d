"""`sublora verify RUN_DIR`: decode the compressed model and re-check the certificate."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from sublora.cli.console import out
from sublora.cli.options import RunDirArg

RescoreOpt = Annotated[str, typer.Option(
    "--rescore", help="quick: re-score 16 token blocks and 4 documents of the evidence, chosen at random now; "
    "all: every sampled block and document (slower; the time is printed).")]
RescoreSeedOpt = Annotated[Optional[int], typer.Option(
    "--rescore-seed", help="Seed of the quick check's random choice (default: fresh; each run prints its seed).")]


def verify(run_dir: RunDirArg, rescore: RescoreOpt = "quick", rescore_seed: RescoreSeedOpt = None) -> None:
    """Decode model.slc, check every hash, recompute every derived field and bound, re-score the evidence."""
    from sublora.bounds.verify import verify as verify_fn

    for check in verify_fn(run_dir, rescore, rescore_seed):
        out.print(f"[green]ok[/] {check}", highlight=False)
    out.print("[bold green]certificate verified[/]")
