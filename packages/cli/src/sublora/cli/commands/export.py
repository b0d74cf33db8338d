"""`sublora export RUN_DIR --hf DIR`: the certified model as plain Hugging Face weights + a model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sublora.cli.console import out
from sublora.cli.options import FormatOpt, RunDirArg


def export(
    run_dir: RunDirArg,
    hf: Annotated[Path, typer.Option("--hf", help="Directory to write (config.json, model.safetensors, tokenizer, "
                                     "README.md): loadable by AutoModelForCausalLM.from_pretrained.")],
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty --hf directory.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Verify the certificate first (as "
                                         "`sublora verify`: a few seconds); the card says which.")] = True,
    fmt: FormatOpt = "table",
) -> None:
    """Export the certified model (decoded model.slc, LoRA merged, head untied) with its certificate's card."""
    from sublora.core.rundir import RunDir

    RunDir(run_dir).require(certified=True)  # before importing torch: a wrong path answers at once
    from sublora.bounds.export import export_hf

    summary = export_hf(run_dir, hf, force=force, verify=verify)
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2))
        return
    head = summary["headline"]
    bound = f"{head['name']} <= {head['value']:.4f}" if head.get("value") is not None else "no headline"
    checked = "verified" if summary["verified"] else "NOT verified (--no-verify)"
    out.print(f"wrote [bold]{escape(str(hf))}[/]: {summary['parameters']:,} parameters, certificate {bound}, {checked} "
              f"(sha256 {summary['certificate_sha256'][:12]}...)", highlight=False)
