"""`sublora sweep GRID.yaml`: train + bound every point of an experiment grid, with a live table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.live import Live
from rich.table import Table

from sublora.cli.console import err, out

STYLE = {"done": "green", "skipped": "green", "running": "yellow", "failed": "red", "queued": "dim",
         "submitted": "cyan", "pending": "dim", "interrupted": "magenta"}
#: states whose run directory may hold progress (a requeued job waits as "submitted" after some steps)
WITH_PROGRESS = ("submitted", "running", "done", "skipped", "failed", "interrupted")


def sweep(
    grid_file: Annotated[Path, typer.Argument(help="GRID.yaml: base config plus axes (see configs/grids/).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results directory (default: runs/<grid name>).")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Points run at once (local: default 1; "
                                                "slurm: the job array's %N limit, default none).")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="torch threads per point (default: "
                                                   "local: CPU count / jobs; slurm: the grid's resources.cpus; "
                                                   "or what the sweep used before).")] = None,
    launcher: Annotated[str, typer.Option("--launcher", "-l", help="Where points run: 'local' (processes here) or "
                                          "'slurm' (job arrays through submitit; options in the grid's "
                                          "`launchers: {slurm: ...}`). `sublora plugins --kind launcher` lists all.")] = "local",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the points and their state; run nothing.")] = False,
    rerun_changed: Annotated[bool, typer.Option(
        "--rerun-changed", help="Redo points whose run has other settings than the grid now gives them "
        "(bound.* changes recompute the certificate, training changes retrain; old runs go to DIR/.replaced/).")] = False,
) -> None:
    """Run every point (train, compress, bound, verify) into its own run directory named from its axis values.

    Finished points are skipped, interrupted ones resume, a failing point is recorded with its error
    (DIR/sweep.json, DIR/logs/) and does not stop the others; a failed point (or one whose job was
    killed) is retried with the grid's current settings, from its last checkpoint. Points whose runs
    have other settings than the grid are refused by name unless --rerun-changed. Then `sublora analyze DIR`.
    """
    from sublora.cli.sweeper import Sweep, make_launcher
    from sublora.core.sweep import load_grid, run_state

    grid = load_grid(grid_file)
    runner = Sweep(grid, out_dir or Path("runs") / grid.name, threads=threads, rerun_changed=rerun_changed,
                   launcher=make_launcher(launcher, grid, jobs=jobs))
    if dry_run:
        table = Table(title=f"{grid.name}: {len(runner.points)} points in {runner.out}", title_justify="left")
        for col in ("point", *[a.name for a in grid.axes], "state"):
            table.add_column(col)
        from sublora.core.manifest import describe_diff

        for name, ps in runner.points.items():
            state, changes = run_state(runner.out / name), runner.changes(ps.point)
            if changes:
                state += f" [red](settings changed: {describe_diff(changes.all, limit=3)})[/]"
            table.add_row(name, *ps.point.labels.values(), state)
        out.print(table)
        return
    t0 = time.perf_counter()
    with Live(render(runner), console=err, refresh_per_second=2, transient=False) as live:
        states = runner.run(on_change=lambda r: live.update(render(r)))
    failed = [ps for ps in states if ps.state == "failed"]
    done = sum(ps.state in ("done", "skipped") for ps in states)
    out.print(f"{done}/{len(states)} points finished in {time.perf_counter() - t0:.0f} s; results in {runner.out} "
              f"(next: sublora analyze {runner.out})", highlight=False)
    for ps in failed:
        out.print(f"[red]failed[/] {ps.point.name}: {ps.error}  (log: {runner.out / 'logs' / ps.point.name}.log)",
                  highlight=False)
    if failed:
        raise typer.Exit(1)


def render(runner) -> Table:
    """One row per point: state, training progress, losses, headline bound, time."""
    from sublora.cli.sweeper import progress_of

    table = Table(title=f"sweep {runner.grid.name}: {runner.out} ({runner.launcher.describe()}, {runner.threads} threads "
                  "each)",
                  title_justify="left")
    for col, justify in (("point", "left"), ("state", "left"), ("step", "right"), ("train bits/tok", "right"),
                         ("val bits/tok", "right"), ("bound", "right"), ("time", "right")):
        table.add_column(col, justify=justify)
    now = time.time()
    for name, ps in runner.points.items():
        info = progress_of(runner.out / name) if ps.state in WITH_PROGRESS else {}
        step = f"{info['step']}/{info.get('max_steps', '?')}" if "step" in info else ""
        best = info.get("best") or {}
        seconds = ps.seconds if ps.seconds is not None else (now - ps.started if ps.started else None)
        state = f"[{STYLE.get(ps.state, 'white')}]{ps.state}[/]"
        if ps.state in ("submitted", "running") and ps.job and runner.launcher.config.spec != "local":
            state += f" [dim](job {ps.job})[/]"
        if ps.error:
            state += f" [red]{ps.error[:60]}[/]"
        table.add_row(name, state, step, _num(info.get("loss_bpt")), _num(info.get("val_bpt")),
                      _num(best.get("value")), f"{seconds:.0f} s" if seconds else "")
    return table


def _num(value) -> str:
    return "" if value is None else f"{value:.3f}"
