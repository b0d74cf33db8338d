"""`sublora run`: the main job: data -> train -> compress + bound -> verify, with a results table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from sublora.cli.console import out
from sublora.cli.options import OVERRIDES_HELP, ConfigFile, Preset, ProjectorOpt


def run(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/main"),
    config_file: ConfigFile = None,
    projector: ProjectorOpt = None,
    preset: Preset = "default",
) -> None:
    """Prepare data, train, compress, bound and verify; print the results table."""
    from sublora.bounds.certify import certify
    from sublora.bounds.verify import verify
    from sublora.cli.commands.train import run_training
    from sublora.cli.options import resolve
    from sublora.cli.progress import task_bar
    from sublora.cli.report import print_certificate
    from sublora.core.rundir import RunDir

    t0 = time.perf_counter()
    config = resolve(ctx, config_file, projector, preset)
    rd = RunDir(out_dir)
    status = rd.read_manifest().get("status") if rd.manifest.is_file() else None
    if status in (None, "training"):
        run_training(config, out_dir)
        status = rd.read_manifest().get("status")
        if status != "trained":
            out.print("training stopped before max_steps; rerun the same command to resume.")
            raise typer.Exit(1)
    else:
        out.print(f"{out_dir} already trained (status {status}); continuing with the bound.")
    cert = certify(out_dir, progress=task_bar)
    print_certificate(cert)
    for check in verify(out_dir):
        out.print(f"[green]ok[/] {check}", highlight=False)
    out.print("[bold green]certificate verified[/]")
    out.print(f"done in {time.perf_counter() - t0:.1f} s; results in {out_dir}/certificate.json", highlight=False)


run.__doc__ = f"Main job: prepare data, train, compress, bound and verify; print the results table. {OVERRIDES_HELP}"
