"""`sublora plugins [NAME[:VARIANT]]`: every registered component, or one component's options.

The listing never fails because of one plugin: a plugin that does not load, or a name that two
distributions register, is a row with its problem (shortened; ``-v`` prints it whole). Only
config classes are imported (pydantic, no torch), so this answers at once.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from sublora.cli.console import out
from sublora.cli.options import FormatOpt

_SHORT = 70  # characters of a problem shown in the listing without -v


def plugins(
    spec: Annotated[Optional[str], typer.Argument(
        metavar="NAME[:VARIANT]", help="Show one component: description, variants and every option with its "
        "type, default and constraints.")] = None,
    kind: Annotated[Optional[str], typer.Option(
        "--kind", "-k", help="Only this kind: projector, quantizer, coder, bound, source, tokenizer, model or "
        "launcher.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Descriptions, and each problem in full.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """List registered components (kind, name, variants, package, version, status), or show one."""
    kind = _kind(kind)
    if spec is not None:
        _detail(spec, kind, fmt)
    else:
        _listing(kind, verbose, fmt)


def _kind(kind: str | None) -> str | None:
    from sublora.core.registry import KINDS, registry

    if kind is None:
        return None
    kind = kind.strip().lower()
    if kind not in KINDS and kind.endswith("s") and kind[:-1] in KINDS:
        kind = kind[:-1]
    registry(kind)  # an unknown kind raises, listing the kinds
    return kind


# ---------------------------------------------------------------------------------------------------- the listing


def _listing(kind: str | None, verbose: bool, fmt: str) -> None:
    from sublora.core.registry import all_statuses, registry

    statuses = registry(kind).statuses() if kind else all_statuses()
    if fmt == "json":
        rows = [
            {"kind": s.entry.kind, "name": s.entry.name, "variants": list(s.variants), "package": s.entry.distribution,
             "version": s.entry.version, "status": s.state, "error": s.error or None, "hint": s.hint or None,
             "description": s.description, "entry_point": s.entry.value}
            for s in statuses
        ]
        typer.echo(json.dumps(rows, indent=2))
        return

    from rich.table import Table
    from rich.text import Text

    table = Table(title="sublora components", title_justify="left")
    for col in ("kind", "name", "variants", "package", "version", "status"):
        table.add_column(col, overflow="fold")
    if verbose:
        table.add_column("description", ratio=1, overflow="fold")
    problems = [s for s in statuses if not s.ok]
    unusable = len({(s.entry.kind, s.entry.name) for s in problems})  # a conflict is one name in two rows
    for s in statuses:
        status = Text("ok", style="green") if s.ok else Text(f"{s.state}: ", style="bold red").append(_short(s))
        row = [Text(x) for x in (s.entry.kind, s.entry.name, ", ".join(s.variants), s.entry.distribution,
                                 s.entry.version)] + [status]
        if verbose:
            row.append(Text(s.description))
        table.add_row(*row)
    out.print(table)
    if problems and verbose:  # in full, outside the table: nothing folded or cut
        out.print(Text(f"{unusable} component(s) cannot be used:", style="bold red"))
        shown = set()
        for s in problems:
            if (s.entry.kind, s.entry.name, s.error) in shown:  # a conflict: once, not once per distribution
                continue
            shown.add((s.entry.kind, s.entry.name, s.error))
            where = "" if s.state == "conflict" else f" ({s.entry.distribution} {s.entry.version})"
            out.print(Text(f"- {s.entry.kind} '{s.entry.name}'{where}, {s.state}: {s.error}"), soft_wrap=True)
            if s.hint:
                out.print(Text(f"  hint: {s.hint}"), soft_wrap=True)
    elif problems:
        out.print(f"{unusable} component(s) cannot be used; `sublora plugins -v` prints each problem in full.",
                  style="yellow", highlight=False, markup=False)
    out.print("`sublora plugins NAME[:VARIANT]` shows a component's options.", style="dim", highlight=False,
              markup=False)


def _short(status: Any) -> str:
    """The cause in one line, cut to fit a table cell."""
    text = status.summary or (status.error.splitlines() or ["does not load"])[0]
    return text if len(text) <= _SHORT else text[: _SHORT - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------------- one component


def _detail(spec: str, kind: str | None, fmt: str) -> None:
    from sublora.core.describe import describe

    infos = describe(spec, kind)
    if fmt == "json":
        docs = [_as_json(i) for i in infos]
        typer.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
        return
    for i, info in enumerate(infos):
        if i:
            out.print()
        _print_detail(info)


def _print_detail(info: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from sublora.core.describe import SELECTED_BY

    e = info.entry
    head = Text(f"{e.kind} ", style="bold")
    head.append(info.spec, style="bold cyan")
    head.append(f"  ({e.distribution} {e.version})")
    out.print(head)
    if info.description:
        out.print(Text(info.description))
    lines = []
    if info.variants:
        default = info.default_variant or f"none ('{e.name}' alone)"
        lines.append(("variants", f"{', '.join(info.variants)} (default: {default})"))
    else:
        lines.append(("variants", "none"))
    select_field, options_field = SELECTED_BY.get(e.kind, ("?", "?"))
    options_field = options_field.replace("NAME", e.name)
    lines.append(("selected by", f"{select_field} (e.g. --{select_field}={info.spec}); options in {options_field}"))
    for name, value in info.settings.items():
        lines.append((name, json.dumps(value)))
    cls = info.config_class
    lines.append(("config", f"{cls.__module__}:{cls.__qualname__}"))
    lines.append(("implementation", info.implementation or "-"))
    if info.checks:
        lines.append(("also checks", ", ".join(info.checks)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        out.print(Text(f"  {key:<{width}}  {value}"))

    if not info.options:
        out.print(Text("options: none"))
        return
    table = Table(title="options", title_justify="left")
    for col in ("option", "type", "default", "constraints"):
        table.add_column(col, no_wrap=col == "option")
    table.add_column("description", ratio=1)
    for o in info.options:
        default = "required" if o.required else _default_text(o.default)
        table.add_row(*(Text(x) for x in (o.name, o.type, default, ", ".join(o.constraints), o.description)))
    out.print(table)


def _default_text(value: Any) -> str:
    return json.dumps(_jsonable(value))


def _jsonable(value: Any) -> Any:
    """As written in a YAML/JSON config; what JSON cannot hold is shown by its repr."""
    return json.loads(json.dumps(value, default=repr))


def _as_json(info: Any) -> dict[str, Any]:
    from sublora.core.describe import SELECTED_BY

    e = info.entry
    select_field, options_field = SELECTED_BY.get(e.kind, ("?", "?"))
    cls = info.config_class
    return {
        "kind": e.kind, "name": e.name, "spec": info.spec, "variant": info.variant, "variants": list(info.variants),
        "default_variant": info.default_variant, "package": e.distribution, "version": e.version,
        "description": info.description, "config": f"{cls.__module__}:{cls.__qualname__}",
        "implementation": info.implementation, "selected_by": select_field,
        "options_in": options_field.replace("NAME", e.name), "settings": info.settings,
        "options": [{"name": o.name, "type": o.type, "required": o.required,
                     "default": None if o.required else _jsonable(o.default),
                     "constraints": list(o.constraints), "description": o.description} for o in info.options],
        "checks": list(info.checks),
    }
