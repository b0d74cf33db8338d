"""`sublora run`: the main job: data -> train -> compress + bound -> verify, with a results table.

Rerunning the same command continues where the run stopped (an interrupted training
resumes, a missing certificate is computed, an unverified one is verified). Settings
that differ from the run's are never ignored: they are refused by name, or, with
--rerun-changed, the stages they affect are redone.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from sublora.cli.console import out
from sublora.cli.options import OVERRIDES_HELP, ConfigFile, Preset, ProjectorOpt

RerunChanged = Annotated[bool, typer.Option(
    "--rerun-changed", help="When the settings differ from the run's: recompute the certificate for changed "
    "bound.* settings; retrain from scratch for changed training settings (the old run is moved to "
    "PARENT/.replaced/).")]


def run(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path("runs/main"),
    config_file: ConfigFile = None,
    projector: ProjectorOpt = None,
    preset: Preset = "default",
    rerun_changed: RerunChanged = False,
    charge: Annotated[bool, typer.Option(help="Certifying a certified run again with new bound settings: pay for "
                                              "the re-draw (attempt j: every bound at delta / (j (j + 1)), docs/bounds.md section 8).")] = False,
) -> None:
    """Prepare data, train, compress, bound and verify; print the results table."""
    from sublora.cli.options import resolve
    from sublora.core.errors import RunInterrupted
    from sublora.core.rundir import RunDir
    from sublora.core.runlock import run_lock

    t0 = time.perf_counter()
    config = resolve(ctx, config_file, projector, preset)
    rd = RunDir(out_dir)
    plan = _plan(rd, config, rerun_changed)
    stage = "training"
    with run_lock(out_dir):
        try:
            if plan.train:
                from sublora.cli.commands.train import run_training

                run_training(config, out_dir)
                if rd.status() != "trained":
                    out.print("training stopped before max_steps; rerun the same command to resume.")
                    raise typer.Exit(1)
            if plan.bound:
                from sublora.bounds.certify import certify
                from sublora.cli.progress import task_bar
                from sublora.cli.report import print_certificate

                stage = "bounding"
                cert = certify(out_dir, progress=task_bar, force=plan.force_bound, overrides=plan.bound_overrides,
                               charge=charge)
                print_certificate(cert)
            from sublora.bounds.verify import verify

            stage = "verifying"
            for check in verify(out_dir):
                out.print(f"[green]ok[/] {check}", highlight=False)
        except KeyboardInterrupt as exc:
            if isinstance(exc, RunInterrupted):
                raise
            raise RunInterrupted(f"interrupted while {stage}; {out_dir} keeps every finished stage: "
                                 "rerun the same command to continue.") from None
    out.print("[bold green]certificate verified[/]")
    out.print(f"done in {time.perf_counter() - t0:.1f} s; results in {out_dir}/certificate.json", highlight=False)


@dataclass(frozen=True)
class _Plan:
    train: bool
    bound: bool
    force_bound: bool = False
    bound_overrides: dict[str, Any] | None = None


def _plan(rd, config, rerun_changed: bool) -> _Plan:
    """Which stages to run, from the run's status and how ``config`` differs from its settings; refuses changes
    it would otherwise ignore."""
    from sublora.core.errors import RunDirError
    from sublora.core.manifest import describe_diff
    from sublora.core.rundir import set_aside

    if rd.root.exists() and not rd.root.is_dir():
        raise RunDirError(f"{rd.root} is a file, not a run directory.", hint="Give --out a directory path.")
    status = rd.status()
    if status is None:
        return _Plan(train=True, bound=True)
    changes = rd.changes(config)
    if changes.training:
        if rerun_changed:
            out.print(f"settings changed ({describe_diff(changes.training)}); moved the old run to "
                      f"{set_aside(rd.root)}; training again.", highlight=False)
            return _Plan(train=True, bound=True)
        if status != "training":  # an interrupted run: train() refuses by name, or restarts one with no step done
            raise RunDirError(
                f"{rd.root} already holds a run (status: {status}) trained with other settings: "
                f"{describe_diff(changes.training)}.",
                hint="Use a new --out for the new settings, drop the overrides to continue this run, or pass "
                "--rerun-changed to retrain here (the old run is moved to .replaced/).")
    if status == "training":
        return _Plan(train=True, bound=True)
    # bound.* settings: compare with the certificate's (or, before one, the manifest's) and pass all of them on
    overrides = {f"bound.{k}": v for k, v in config.bound.model_dump(mode="json").items()} if changes.bound else None
    if status == "trained":
        out.print(f"{rd.root} already trained; continuing with the bound.", highlight=False)
        return _Plan(train=False, bound=True, force_bound=rd.certificate.exists(), bound_overrides=overrides)
    if changes.bound:
        if not rerun_changed:
            command = " ".join(["sublora bound --force --charge", shlex.quote(str(rd.root)),
                                *(shlex.quote(f"--{k}={_arg(v)}") for k, _, v in changes.bound)])
            raise RunDirError(
                f"{rd.root} holds a certificate computed with other bound settings: {describe_diff(changes.bound)}.",
                hint=f"Recompute it, paying for the new draw, with `{command}` (or pass --rerun-changed --charge), "
                     "or drop the overrides.")
        out.print(f"bound settings changed ({describe_diff(changes.bound)}); recomputing the certificate.",
                  highlight=False)
        return _Plan(train=False, bound=True, force_bound=True, bound_overrides=overrides)
    if status in ("bounded", "verified"):  # rerunning a finished command checks it again and succeeds
        out.print(f"{rd.root} already holds a {'verified ' if status == 'verified' else ''}certificate for these "
                  "settings; verifying it.", highlight=False)
        return _Plan(train=False, bound=False)
    raise RunDirError(f"{rd.root} already holds a certificate (status: {status}) for these settings.",
                      hint=f"Read it with `sublora show {rd.root}`, re-check it with `sublora verify {rd.root}`, "
                      f"or recompute it with `sublora bound --force {rd.root}`.")


def _arg(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


run.__doc__ = f"Main job: prepare data, train, compress, bound and verify; print the results table. {OVERRIDES_HELP}"
