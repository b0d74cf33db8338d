"""`sublora data prepare`: tokenize a source into train.bin / val.bin + metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from sublora.cli.console import out
from sublora.cli.options import EXTRA_ARGS, ConfigFile

app = typer.Typer(help="Prepare data sets.", no_args_is_help=True)


@app.command("prepare", context_settings=EXTRA_ARGS, help="Tokenize a source into a prepared data directory. Any data field can be overridden with a dotted "
             "option, e.g. --data.max_documents=100 --data.split_seed=7 --data.source_options='{path: ./corpus}'.")
def prepare(
    ctx: typer.Context,
    config_file: ConfigFile = None,
    source: Annotated[Optional[str], typer.Option(help="Source spec: pystdlib (default), text, hf.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer spec: bytes (default) or tiktoken:<encoding>.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: the cache dir).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Re-prepare into --out even if it already holds data.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Tokenizer processes (1: this process). The files are the "
                                         "same for any number; memory stays bounded either way.")] = 1,
) -> None:
    from sublora.cli.options import resolve
    from sublora.cli.progress import task_bar
    from sublora.core.data import PreparedData, prepare_data, prepare_or_reuse
    from sublora.core.data.prepare import skipped_note

    others = [a for a in ctx.args if a.startswith("--") and not a.startswith("--data.")]
    if others:
        from sublora.core.errors import ConfigError

        raise ConfigError(f"`data prepare` takes --data.* settings only; got {', '.join(others)}.",
                          hint="Model, training and bound settings belong to `sublora train` / `run` / `bound`.")
    if overwrite and out_dir is None:
        from sublora.core.errors import ConfigError

        raise ConfigError("--overwrite re-prepares into --out; no --out was given.",
                          hint="Give --out DIR, or drop --overwrite (the cache is re-prepared when its source "
                               "changes).")
    if source:
        ctx.args.append(f"--data.source={source}")
    if tokenizer:
        ctx.args.append(f"--data.tokenizer={tokenizer}")
    if out_dir:
        ctx.args.append(f"--data.dir={out_dir}")
    config = resolve(ctx, config_file)
    with task_bar("tokenize") as progress:
        if overwrite and config.data.dir is not None:
            path, reused, changed = Path(config.data.dir), False, ""
            prepare_data(config.data, path, progress=progress, overwrite=True, workers=workers)
        else:
            done = prepare_or_reuse(config.data, progress=progress, workers=workers)
            path, reused, changed = done.path, done.reused, done.changed_note()

    meta = PreparedData.open(path).meta
    if reused:
        out.print(f"reused [bold]{path}[/] (prepared earlier from the same settings and unchanged files)")
    else:
        out.print(f"prepared [bold]{path}[/]")
    if changed:
        out.print(f"  note: {changed}", highlight=False)
    out.print(f"  source: {meta['source']['spec']}  tokenizer: {meta['tokenizer']['spec']}  vocab: {meta['vocab_size']}",
              highlight=False)
    for split in ("train", "val"):
        out.print(f"  {split}: {meta['n_documents'][split]:,} documents, {meta['n_tokens'][split]:,} tokens", highlight=False)
    if meta.get("skipped_undecodable_files"):
        out.print(f"  {skipped_note(meta)}", highlight=False)
