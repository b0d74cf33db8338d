"""The one place that turns library errors into a short message, a next step and an exit code."""

from __future__ import annotations

import os
import sys
import traceback

from rich.markup import escape

from sublora.cli.console import err

EXIT_CODES = {
    "ConfigError": 2,
    "UnknownComponentError": 2,
    "PluginLoadError": 3,
    "DataError": 4,
    "CheckpointError": 5,
    "RunDirError": 6,
    "TrainingError": 7,
    "VerificationError": 8,
    "BoundError": 9,
    "OSError": 10,
    "LmgcError": 11,  # sublora-lmgc's inputs, containers and priors
}


def exit_code(exc: BaseException) -> int:
    """The code of the nearest class in the error's hierarchy that has one (a plugin's error subclassing
    e.g. DataError exits like it); 1 for a SubloraError of no known family."""
    for cls in type(exc).__mro__:
        if cls.__name__ in EXIT_CODES:
            return EXIT_CODES[cls.__name__]
    return 1


def debug_enabled() -> bool:
    return os.environ.get("SUBLORA_DEBUG", "").lower() not in ("", "0", "false", "no")


def report(exc: BaseException) -> int:
    """Print a one-line error (plus hint) to stderr and return the exit code."""
    from sublora.core.errors import SubloraError

    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, SubloraError):
        err.print(f"[bold red]error:[/] {escape(str(exc.message))}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"[yellow]hint:[/] {escape(str(exc.hint))}", highlight=False, soft_wrap=True)
        if not debug_enabled():
            err.print("[dim](for a traceback: sublora --debug COMMAND ..., or SUBLORA_DEBUG=1)[/]", highlight=False)
        return exit_code(exc)
    if isinstance(exc, KeyboardInterrupt):  # one line: where the run stands and how to go on
        message = getattr(exc, "message", None) or "interrupted; rerun the same command to continue."
        err.print(message, highlight=False, markup=False, soft_wrap=True)
        return 130
    if isinstance(exc, OSError) and exc.filename is not None:  # a path that is missing, unreadable or of the wrong kind
        err.print(f"[bold red]error:[/] {escape(f'{exc.strerror or exc}: {exc.filename}')}", highlight=False, soft_wrap=True)
        err.print("[yellow]hint:[/] check the path (and that nothing else is writing there), then rerun.",
                  highlight=False, soft_wrap=True)
        return EXIT_CODES["OSError"]
    err.print(f"[bold red]internal error:[/] {escape(f'{type(exc).__name__}: {exc}')}", highlight=False, soft_wrap=True)
    if not debug_enabled():
        err.print("[dim]This is a bug in sublora or a plugin; rerun as sublora --debug COMMAND ... for the traceback.[/]")
    return 1
