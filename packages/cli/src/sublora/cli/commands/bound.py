"""`sublora bound RUN_DIR`: compress the trained model and compute every bound (scored on N processes with --nproc)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Annotated

import typer

from sublora.cli.console import out
from sublora.cli.options import FormatOpt, RunDirArg

NprocOpt = Annotated[int, typer.Option(
    "--nproc", min=1, metavar="N", help="Score with N processes (torchrun; gloo on CPU): the token blocks and "
    "documents are split between them, rank 0 writes the one certificate (the same numbers as one process).")]
DeviceOpt = Annotated[str, typer.Option(
    "--device", metavar="auto|cpu|cuda", help="Device of the scoring forward passes (auto = cuda when available); "
    "recorded in the certificate's `scoring`.")]


def bound(
    ctx: typer.Context,
    run_dir: RunDirArg,
    force: Annotated[bool, typer.Option(help="Recompute an existing certificate.")] = False,
    charge: Annotated[bool, typer.Option(help="Allow certifying again with new bound settings, paying for the "
                                              "re-draw: attempt j computes every bound at delta / (j (j + 1)).")] = False,
    fmt: FormatOpt = "table",
    nproc: NprocOpt = 1,
    device: DeviceOpt = "auto",
) -> None:
    """Quantize (+ QAT, levels search) and code w, score the smoothed model, write certificate.json.

    bound.* settings can be overridden, e.g. --bound.levels=7 --bound.token_blocks=500 (--bound.token_blocks=all:
    every training block, no subsampling term). Every attempt is recorded in RUN/bound_attempts.jsonl; new
    settings on a certified run need --charge (docs/bounds.md section 8).
    """
    from sublora.core.rundir import RunDir

    RunDir(run_dir).require()  # before importing torch: a wrong path answers at once
    from sublora.bounds import sharded

    sharded.resolve_device(device)  # an unusable device is refused before any work
    if nproc > 1 and sharded.world_size() == 1:
        args = ["bound", str(run_dir), "--device", device, "--format", fmt,  # the ranks know N from torchrun
                *(["--force"] if force else []), *(["--charge"] if charge else []), *ctx.args]
        _launch(nproc, device, args)
        return
    if sharded.rank() > 0:  # a torchrun rank other than 0: score its share of the batches, rank 0 reports
        sharded.serve(run_dir)
        return

    from sublora.bounds.certify import certify
    from sublora.cli.progress import task_bar
    from sublora.cli.report import print_certificate
    from sublora.core.overrides import parse_overrides

    with sharded.scoring(device):
        cert = certify(run_dir, progress=task_bar, force=force, overrides=parse_overrides(list(ctx.args)),
                       charge=charge)
    if fmt == "json":
        typer.echo(json.dumps(cert["bounds"], indent=2))
    else:
        print_certificate(cert)
        out.print(f"wrote {run_dir / 'certificate.json'}")


def _launch(nproc: int, device: str, args: list[str]) -> None:
    """`sublora bound --nproc N`: the same command on N torchrun processes (ranks see WORLD_SIZE = N)."""
    from sublora.core import distributed

    distributed.check_nproc(nproc, device)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env.setdefault("LOGLEVEL", "ERROR")  # torchrun's own warnings; the ranks' messages still show
    code = subprocess.call(distributed.torchrun_command(nproc, args), env=env)
    if code:
        out.print(f"[red]sublora bound with {nproc} processes failed[/] (torchrun exit code {code}); rank 0's "
                  "message above says why. Nothing was written unless a certificate was reported.")
        raise typer.Exit(code)
