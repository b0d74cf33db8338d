"""The `sublora` command: wires the commands and maps errors to exit codes.

Only typer/rich are imported here; each command imports torch, transformers
and friends itself, so `sublora --help` and `sublora plugins` answer at once.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Annotated

import typer

from sublora.cli.commands import analyze, bound, data, plugins, run, sample, show, sweep, train, verify
from sublora.cli.options import EXTRA_ARGS
from sublora.cli.subapps import add_subapps

app = typer.Typer(
    name="sublora",
    help="Train language models in a LoRA subspace, compress them to exact bits, and certify generalization bounds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    if debug:
        os.environ["SUBLORA_DEBUG"] = "1"


app.command("plugins")(plugins.plugins)
app.add_typer(data.app, name="data")
app.command("train", context_settings=EXTRA_ARGS)(train.train)
app.command("bound", context_settings=EXTRA_ARGS)(bound.bound)
app.command("verify")(verify.verify)
app.command("run", context_settings=EXTRA_ARGS)(run.run)
app.command("show")(show.show)
app.command("sweep")(sweep.sweep)
app.command("analyze")(analyze.analyze)
app.command("sample")(sample.sample)
app.command("export")(__import__("sublora.cli.commands.export", fromlist=["export"]).export)  # issue 13.3
app.command("bound-model", context_settings=EXTRA_ARGS)(__import__("sublora.cli.commands.bound_model", fromlist=["x"]).bound_model)  # 13.2
app.command("finetune", context_settings=EXTRA_ARGS)(__import__("sublora.cli.commands.finetune", fromlist=["x"]).finetune)  # 13.1
add_subapps(app)  # other distributions' command groups, e.g. `sublora lmgc` (entry-point group sublora.cli)


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt past typer, which would turn it into a silent exit 130."""

    def __init__(self, interrupt: KeyboardInterrupt):
        super().__init__(str(interrupt))
        self.interrupt = interrupt


def _carry_interrupts(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise _Interrupted(exc) from exc

    wrapper.carries_interrupts = True
    return wrapper


def _reflow(text: str | None) -> str | None:
    """Help text with each paragraph on one line: Typer >= 0.12 in rich markup mode keeps a docstring's
    single line breaks, which made ragged help (the terminal wraps the paragraphs itself)."""
    import inspect

    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _wrap_commands(typer_app: typer.Typer) -> None:
    for info in typer_app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "carries_interrupts", False):
            info.help = _reflow(info.help or info.callback.__doc__)
            info.callback = _carry_interrupts(info.callback)
    for group in typer_app.registered_groups:
        _wrap_commands(group.typer_instance)


_wrap_commands(app)


def _terminate(signum, frame) -> None:
    """SIGTERM (e.g. from `sublora sweep` stopping its points) stops like Ctrl-C: the work so far is saved."""
    raise KeyboardInterrupt


def main() -> None:
    from sublora.core.distributed import launched  # no torch import

    code = _run()
    if launched():
        # A rank of `--nproc N` (torchrun) leaves without the interpreter's teardown: gloo's C++ threads
        # sometimes abort it there ("terminate called without an active exception", exit -6) after the
        # work is done and written (the 2-process training test failed so in ~1 of 10 CI runs).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run() -> int:
    """Run the command line; its exit code."""
    from sublora.cli.errors import report

    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Standalone mode: Typer reports usage errors itself (its message, exit 2) and exits on
        # typer.Exit, with no need to know which click it uses (vendored since Typer 0.26); only what
        # a command raises reaches the handlers below.
        app()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # sys.exit("message"), as Python itself reports it
        return 1
    except _Interrupted as exc:
        return report(exc.interrupt)
    except Exception as exc:  # noqa: BLE001 - the one place errors become messages
        return report(exc)
    except KeyboardInterrupt as exc:
        return report(exc)
    return 0


if __name__ == "__main__":
    main()
