"""`sublora lmgc ...`: a Typer sub-app that `sublora` finds through the ``sublora.cli`` entry-point group.

Only typer is imported here (``sublora --help`` imports this module); each command imports
torch and friends itself.
"""

from __future__ import annotations

import typer

from sublora.lmgc.cli import codec, collect, prior

app = typer.Typer(
    name="lmgc",
    help="LM-GC: lossless compression of gradients and weights with a language-model prior, and its baselines.",
    no_args_is_help=True,
)

app.command("collect")(collect.collect)
app.command("compress")(codec.compress)
app.command("decompress")(codec.decompress)
app.command("bench")(codec.bench)
app.command("prior-id")(prior.prior_id)
