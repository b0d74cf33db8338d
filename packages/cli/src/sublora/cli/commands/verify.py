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
    "--rescore-seed", min=0, help="Seed of the quick check's random choice (default: fresh; each run prints its seed).")]


DeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="auto|cpu|cuda", help="Device to re-score on (auto = cuda when available); the report "
    "states the tolerance applied against the certificate's scoring device.")]


def verify(run_dir: RunDirArg, rescore: RescoreOpt = "quick", rescore_seed: RescoreSeedOpt = None,
           device: DeviceOpt = "auto") -> None:
    """Decode model.slc, check every hash, recompute every derived field and bound, re-score the evidence."""
    import json

    from sublora.core.rundir import RunDir

    rd = RunDir(run_dir)
    if not rd.certificate.is_file():  # (bound-model outputs have a certificate and no manifest)
        rd.require()  # before importing torch: a wrong path answers at once
    from sublora.bounds import sharded
    from sublora.bounds.rescore import tolerance_statement
    from sublora.bounds.verify import verify as verify_fn

    with sharded.scoring(device) as used:
        checks = verify_fn(run_dir, rescore, rescore_seed)
    for check in checks:
        out.print(f"[green]ok[/] {check}", highlight=False)
    try:
        scoring = json.loads(rd.certificate.read_text()).get("scoring")
    except (OSError, ValueError):
        scoring = None
    out.print(f"[green]ok[/] {tolerance_statement(scoring, used)}", highlight=False)
    out.print("[bold green]certificate verified[/]")
