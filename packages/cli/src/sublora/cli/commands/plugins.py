"""`sublora plugins`: every registered component, who provides it, and whether it loads."""

from __future__ import annotations

import json

import typer

from sublora.cli.console import out
from sublora.cli.options import FormatOpt


def plugins(fmt: FormatOpt = "table") -> None:
    """List registered components: kind, name, variants, package, version, status."""
    from rich.table import Table

    from sublora.core.registry import all_statuses

    statuses = all_statuses()
    if fmt == "json":
        rows = [
            {"kind": s.entry.kind, "name": s.entry.name, "variants": list(s.variants), "package": s.entry.distribution,
             "version": s.entry.version, "status": "ok" if s.ok else "broken", "error": s.error or None,
             "description": s.description}
            for s in statuses
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="sublora components", title_justify="left")
    for col in ("kind", "name", "variants", "package", "version", "status"):
        table.add_column(col)
    for s in statuses:
        status = "[green]ok[/]" if s.ok else f"[red]broken[/]: {s.error}"
        table.add_row(s.entry.kind, s.entry.name, ", ".join(s.variants), s.entry.distribution, s.entry.version, status)
    out.print(table)
