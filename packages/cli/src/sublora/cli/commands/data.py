"""`sublora data prepare`: tokenize a source into train.bin / val.bin + metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sublora.cli.console import out
from sublora.cli.options import EXTRA_ARGS, OVERRIDES_HELP, ConfigFile

app = typer.Typer(help="Prepare data sets.", no_args_is_help=True)


@app.command("prepare", context_settings=EXTRA_ARGS, help=f"Tokenize a source into a prepared data directory. {OVERRIDES_HELP}")
def prepare(
    ctx: typer.Context,
    config_file: ConfigFile = None,
    source: Annotated[Optional[str], typer.Option(help="Source spec: pystdlib (default), text, hf.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer spec: bytes (default) or tiktoken:<encoding>.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: the cache dir).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Re-prepare into --out even if it already holds data.")] = False,
) -> None:
    from sublora.cli.options import resolve
    from sublora.cli.progress import task_bar
    from sublora.core.data import ensure_prepared, prepare_data

    if source:
        ctx.args.append(f"--data.source={source}")
    if tokenizer:
        ctx.args.append(f"--data.tokenizer={tokenizer}")
    if out_dir:
        ctx.args.append(f"--data.dir={out_dir}")
    config = resolve(ctx, config_file)
    with task_bar("tokenize") as progress:
        if overwrite and config.data.dir is not None:
            prepare_data(config.data, Path(config.data.dir), progress=progress, overwrite=True)
            path = Path(config.data.dir)
        else:
            path = ensure_prepared(config.data, progress=progress)
    from sublora.core.data import PreparedData

    meta = PreparedData.open(path).meta
    out.print(f"prepared [bold]{path}[/]")
    out.print(f"  source: {meta['source']['spec']}  tokenizer: {meta['tokenizer']['spec']}  vocab: {meta['vocab_size']}",
              highlight=False)
    for split in ("train", "val"):
        out.print(f"  {split}: {meta['n_documents'][split]:,} documents, {meta['n_tokens'][split]:,} tokens", highlight=False)
