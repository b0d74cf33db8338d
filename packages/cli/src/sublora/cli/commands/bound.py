"""`sublora bound RUN_DIR`: compress the trained model and compute every bound."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from sublora.cli.console import out
from sublora.cli.options import FormatOpt, RunDirArg


def bound(
    ctx: typer.Context,
    run_dir: RunDirArg,
    force: Annotated[bool, typer.Option(help="Recompute an existing certificate.")] = False,
    charge: Annotated[bool, typer.Option(help="Allow certifying again with new bound settings, paying for the "
                                              "re-draw: every bound at delta / k, k = distinct attempts.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """Quantize (+ QAT, levels search) and code w, score the smoothed model, write certificate.json.

    bound.* settings can be overridden, e.g. --bound.levels=7 --bound.token_blocks=500. Every attempt is
    recorded in RUN/bound_attempts.jsonl; new settings on a certified run need --charge (docs/bounds.md section 8).
    """
    from sublora.bounds.certify import certify
    from sublora.cli.progress import task_bar
    from sublora.cli.report import print_certificate
    from sublora.core.overrides import parse_overrides

    cert = certify(run_dir, progress=task_bar, force=force, overrides=parse_overrides(list(ctx.args)),
                   charge=charge)
    if fmt == "json":
        typer.echo(json.dumps(cert["bounds"], indent=2))
    else:
        print_certificate(cert)
        out.print(f"wrote {run_dir / 'certificate.json'}")
