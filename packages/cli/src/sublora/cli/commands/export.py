"""`sublora export RUN_DIR --hf DIR`: the certified model as plain Hugging Face weights + a model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sublora.cli.console import out
from sublora.cli.options import FormatOpt, RunDirArg


def export(
    run_dir: RunDirArg,
    hf: Annotated[Path, typer.Option("--hf", help="Directory to write (config.json, model.safetensors, tokenizer, "
                                     "README.md): loadable by AutoModelForCausalLM.from_pretrained.")],
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty --hf directory.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """Export the certified model (decoded model.slc, LoRA merged, head untied) with its certificate's card."""
    from sublora.core.rundir import RunDir

    RunDir(run_dir).require(certified=True)  # before importing torch: a wrong path answers at once
    from sublora.bounds.export import export_hf

    summary = export_hf(run_dir, hf, force=force)
    if fmt == "json":
        typer.echo(json.dumps(summary, indent=2))
        return
    head = summary["headline"]
    bound = f"{head['name']} <= {head['value']:.4f}" if head.get("value") is not None else "no headline"
    out.print(f"wrote [bold]{hf}[/]: {summary['parameters']:,} parameters, certificate {bound} "
              f"(sha256 {summary['certificate_sha256'][:12]}...)", highlight=False)
