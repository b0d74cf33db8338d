"""`sublora lmgc prior-id PRIOR`: a prior's sha256 identity and what it saw, to name it in a coder's config."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def prior_id(
    prior: Annotated[str, typer.Argument(help="A sublora run directory (RUN or RUN:best|last|certified) or a local "
                                         "Hugging Face model directory.")],
    dtype: Annotated[str, typer.Option("--dtype", help="The prior's dtype (part of its identity).")] = "float32",
    format: Annotated[str, typer.Option("--format", help="Output format: table or json.")] = "table",
) -> None:
    """Print a prior's sha256 identity and the data it saw: what `--bound.coder_options` of the lm coder names."""
    from pathlib import Path

    from sublora.cli.console import out
    from sublora.core.errors import ConfigError
    from sublora.lmgc.prior import load_prior
    from sublora.lmgc.provenance import prior_saw

    if format not in ("table", "json"):
        raise ConfigError(f"Unknown format {format!r}.", hint="Use table or json.")
    loaded = load_prior(prior, dtype=dtype)
    head = prior.rpartition(":")[0] if prior.rpartition(":")[2] in ("best", "last", "certified") else prior
    options = {"prior": str(Path(head).resolve()) + prior[len(head):], "identity": loaded.identity,
               **({"dtype": dtype} if dtype != "float32" else {})}
    record = {"identity": loaded.identity, "spec": loaded.spec, "dtype": dtype, "describe": loaded.describe(),
              "zero_shot": loaded.saw.get("zero_shot"), "lm_coder_options": options,
              **({"saw": prior_saw(head)} if loaded.kind == "sublora-run" else {})}
    if format == "json":
        out.print_json(json.dumps(record, default=str))
        return
    out.print(f"identity  {loaded.identity}", highlight=False)
    out.print(f"prior     {loaded.spec} ({dtype})", highlight=False)
    out.print(f"saw       {loaded.describe()}", highlight=False)
    out.print(f"lm coder  --bound.coder_options='{json.dumps(options)}'", highlight=False)
