"""`sublora sample RUN_DIR --prompt TEXT`: generate text from a trained run."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from sublora.cli.console import err, out
from sublora.cli.options import RunDirArg


def sample(
    run_dir: RunDirArg,
    prompt: Annotated[str, typer.Option("--prompt", help="Text to continue (empty: start from end-of-text).")] = "",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n", min=0, help="Tokens to generate per sample.")] = 200,
    temperature: Annotated[float, typer.Option("--temperature", "-t", min=0.0, help="0 = greedy.")] = 0.8,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="Sample among the k most likely.")] = 200,
    samples: Annotated[int, typer.Option("--samples", min=1, help="How many continuations.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first sample (sample i uses seed + i).")] = 0,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="best, last, or certified (the decoded "
                                            "model.slc: the model the bound certifies).")] = "best",
) -> None:
    """Generate text from a trained run (as the reference's sample.py)."""
    from sublora.core.errors import ConfigError
    from sublora.core.rundir import RunDir

    RunDir(run_dir).require(certified=checkpoint == "certified")  # before importing torch
    from sublora.core.generate import generate
    from sublora.core.registry import registry
    from sublora.core.train import load_trained

    if checkpoint not in ("best", "last", "certified"):
        raise ConfigError(f"Unknown checkpoint {checkpoint!r}.", hint="Use best, last or certified.")
    if checkpoint == "certified":
        from sublora.bounds.verify import load_certified

        model, config, data = load_certified(run_dir)
    else:
        model, config, data = load_trained(run_dir, which=checkpoint)
    tokenizer = registry("tokenizer").config(config.data.tokenizer, config.data.tokenizer_options).build()
    ids = [int(i) for i in tokenizer.encode(prompt)] if prompt else [tokenizer.eot_id]
    for i in range(samples):
        tokens = generate(model, ids, max_new_tokens, config.model.block_size, temperature, top_k, seed + i)
        text = tokenizer.decode(tokens[len(ids):])
        if samples > 1:
            err.print(f"--- sample {i + 1} (seed {seed + i})", highlight=False)
        out.print(prompt + text, highlight=False, markup=False)
