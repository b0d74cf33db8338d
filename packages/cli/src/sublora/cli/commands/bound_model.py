"""`sublora bound-model MODEL_DIR --data DATA --out OUT`: a post-hoc bound for a local Hugging Face causal LM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sublora.cli.console import out
from sublora.cli.options import FormatOpt


def bound_model(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Argument(help="A local model directory (save_pretrained): GPT-2, GPT-NeoX/"
                                              "Pythia or LLaMA layout, with its tokenizer.")],
    data: Annotated[str, typer.Option("--data", help="A prepared data directory, a folder of text files, or a "
                                      "source spec (pystdlib, hf:...); --data.* options configure the source.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for architecture.json, model.slc, "
                                          "evidence.npz and certificate.json.")],
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer to prepare --data with (default bytes); "
                                                     "must give the model's own tokenizer's ids.")] = None,
    force: Annotated[bool, typer.Option(help="Recompute an existing certificate in --out.")] = False,
    charge: Annotated[bool, typer.Option(help="Allow certifying again with new settings, paying for it "
                                              "(attempt j: every bound at delta / (j (j + 1))).")] = False,
    trust_tokenizer: Annotated[bool, typer.Option(help="Bound a model directory without a tokenizer, vouching "
                                                       "that it reads the data's ids.")] = False,
    fmt: FormatOpt = "table",
) -> None:
    """Quantize a causal LM's weights tensor by tensor, code them, and certify token- and document-level bounds.

    Settings: --bound.quantizer=uniform|kmeans --bound.levels=16 --bound.coder=... --bound.token_blocks=...
    (as for `sublora bound`), --posthoc.group_size=1024 --posthoc.vector_levels=255 --posthoc.block_size=256.
    Check the result with `sublora verify OUT` (docs/posthoc.md).
    """
    from sublora.bounds.posthoc.certify import bound_model as bound_fn
    from sublora.bounds.posthoc.settings import PosthocSettings
    from sublora.cli.progress import task_bar
    from sublora.core.errors import ConfigError
    from sublora.core.overrides import parse_overrides

    overrides = parse_overrides(list(ctx.args))
    data_overrides = {k[len("data."):]: v for k, v in overrides.items() if k.startswith("data.")}
    settings = {(k[len("posthoc."):] if k.startswith("posthoc.") else k): v
                for k, v in overrides.items() if not k.startswith("data.")}
    unknown = [k for k in settings if not k.startswith("bound.") and k not in PosthocSettings.model_fields]
    if unknown:
        raise ConfigError(f"Unknown option(s) {', '.join('--' + k for k in unknown)}.",
                          hint="Use --bound.*, --posthoc.group_size/vector_levels/block_size or --data.*.")
    cert = bound_fn(model_dir, data, out_dir, PosthocSettings.from_overrides(settings), tokenizer=tokenizer,
                    data_overrides=data_overrides, force=force, charge=charge, trust_tokenizer=trust_tokenizer,
                    progress=task_bar)
    if fmt == "json":
        typer.echo(json.dumps({k: cert[k] for k in ("bounds", "headline", "code_bits", "total_bits", "parameters",
                                                    "bits_per_parameter", "losses_bits_per_token", "resources")},
                              indent=2))
        return
    _print(cert)
    if cert.get("sample_independence"):
        out.print(f"[yellow]note:[/] {escape(cert['sample_independence'])}", highlight=False)
    out.print(f"{cert['parameters']:,} parameters in {cert['code_bits']:,} bits "
              f"({cert['bits_per_parameter']:.3f} bits/parameter); wrote {out_dir / 'certificate.json'}",
              highlight=False)


def _print(cert) -> None:
    from rich.table import Table

    delta = cert["searches"]["attempts"]["delta_per_attempt"]
    table = Table(title=f"Post-hoc bounds (each holds with probability >= {1 - delta:.3g})", title_justify="left")
    for col in ("bound", "estimator", "empirical", "bound value", "random guess", "units", "alpha", "status"):
        table.add_column(col)
    for b in cert["bounds"]:
        alpha = b["inputs"].get("alpha")
        table.add_row(b["name"], b["estimator"], f"{b['empirical']:.4f}", f"{b['value']:.4f}",
                      f"{b['random_guess']:.4f}", b["units"], "-" if alpha is None else f"{alpha:g}",
                      "[red]VACUOUS[/]" if b["value"] >= b["random_guess"] else "[green]non-vacuous[/]")
    out.print(table)
    head = cert.get("headline") or {}
    out.print(f"headline: {head['name']} <= {head['value']:.4f}" if head.get("value") is not None
              else f"headline: none ({head.get('note')})", highlight=False)
    losses = cert["losses_bits_per_token"]
    out.print(f"train loss bits/token on {losses['blocks']} blocks: original {losses['original_train']:.4f}, "
              f"quantized {losses['quantized_train']:.4f}", highlight=False)
