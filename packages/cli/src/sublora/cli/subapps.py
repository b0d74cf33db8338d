"""Command groups from other distributions: the ``sublora.cli`` entry-point group (name -> "module:app").

A distribution adds ``sublora NAME ...`` by registering a Typer app, e.g. sublora-lmgc's
``lmgc = "sublora.lmgc.cli:app"``. The module is imported when ``sublora`` starts (to list it in
``--help``), so it must import only typer and rich at module level. One that fails to load, is
not a Typer app, or takes a name already in use becomes a command that explains that (naming the
distribution) when run, and breaks nothing else. ``SUBLORA_DISABLE_PLUGIN_AUTOLOAD=1`` keeps only
sublora's own distributions, as for components.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

GROUP = "sublora.cli"
#: the distributions of this repository (the component registry's list, plus the packages that add commands)
OWN_DISTRIBUTIONS = frozenset({"sublora-core", "sublora-projectors", "sublora-bounds", "sublora-cli", "sublora-lmgc"})


@dataclass(frozen=True)
class SubApp:
    name: str
    value: str  #: "module:attribute"
    distribution: str

    def load(self) -> Any:
        import importlib

        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def registered() -> list[SubApp]:
    """The ``sublora.cli`` entries of the installed distributions, read straight from each
    ``*.dist-info/entry_points.txt`` on sys.path: importlib.metadata alone takes ~60 ms to import,
    more than the rest of ``sublora --help``."""
    found: dict[tuple[str, str], SubApp] = {}
    for folder in sys.path:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                text = Path(entry.path, "entry_points.txt").read_text(encoding="utf-8")
            except OSError:
                continue
            if f"[{GROUP}]" not in text:
                continue
            dist = re.sub(r"[-_.]+", "-", entry.name.rsplit(".", 1)[0].split("-")[0]).lower()
            for name, value in _section(text, GROUP):
                found.setdefault((name, value), SubApp(name, value, dist))
    return sorted(found.values(), key=lambda e: (e.name, e.value))


def _section(text: str, group: str) -> list[tuple[str, str]]:
    out, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def _broken(name: str, message: str, hint: str):
    def command(ctx: typer.Context) -> None:
        from sublora.core.errors import PluginLoadError

        raise PluginLoadError(message, hint=hint)

    command.__doc__ = f"(unavailable: {message})"
    return command


def add_subapps(app: typer.Typer) -> None:
    """Add every registered command group to ``app`` (a built-in command keeps its name)."""
    builtin = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    own_only = os.environ.get("SUBLORA_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false", "no")
    added: dict[str, str] = {}  # name -> "distribution (module:app)"
    for ep in registered():
        dist = ep.distribution
        if ep.name in builtin or (own_only and dist.lower() not in OWN_DISTRIBUTIONS):
            continue
        if ep.name in added:
            message = f"`sublora {ep.name}` is registered twice: by {added[ep.name]} and by {dist} ({ep.value})."
            _remove(app, ep.name)
            _add_broken(app, ep.name, message, "Uninstall all but one of them (`pip uninstall NAME`).")
            continue
        added[ep.name] = f"{dist} ({ep.value})"
        try:
            sub = ep.load()
            if not isinstance(sub, typer.Typer):
                raise TypeError(f"{ep.value} is a {type(sub).__name__}, not a typer.Typer")
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the command line
            message = f"`sublora {ep.name}` from {dist} failed to load ({type(exc).__name__}: {exc})."
            _add_broken(app, ep.name, message, f"Reinstall {dist}, or uninstall it.")
        else:
            app.add_typer(sub, name=ep.name)


def _add_broken(app: typer.Typer, name: str, message: str, hint: str) -> None:
    app.command(name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
                add_help_option=False)(_broken(name, message, hint))


def _remove(app: typer.Typer, name: str) -> None:
    app.registered_groups[:] = [g for g in app.registered_groups if g.name != name]
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != name]
