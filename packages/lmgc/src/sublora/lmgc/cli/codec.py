"""`sublora lmgc compress | decompress | bench`: LM-GC coding with a language-model prior, from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

PriorOpt = Annotated[str, typer.Option("--prior", help="A sublora run directory (RUN or RUN:best|last|certified; "
                                       "default best) or a local Hugging Face model directory with its tokenizer.")]
WindowOpt = Annotated[Optional[int], typer.Option(
    "--window", min=2, help="Tokens per window, BOS included \\[default: 256, or the prior's context if shorter; "
    "the reference uses 2048, which a CPU codes slowly].")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch threads; recorded in the file, and "
                                         "decoding uses the same number (the bits can depend on it).")]
CheckpointOpt = Annotated[Optional[str], typer.Option(
    "--checkpoint", help="For a gradient directory: a step, or 'weights' \\[default: the last gradient checkpoint].")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="The prior's dtype: float32, bfloat16 or float64.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Output format: table or json.")]


def _checkpoint(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _format(value: str) -> str:
    from sublora.core.errors import ConfigError

    if value not in ("table", "json"):
        raise ConfigError(f"Unknown format {value!r}.", hint="Use table or json.")
    return value


def _bar(description: str):
    from sublora.cli.progress import task_bar

    return task_bar(description)


def compress(
    file: Annotated[Path, typer.Argument(help="A raw float32 file (little-endian), a gradient directory "
                                         "(index.json) or one checkpoint file in it.")],
    prior: PriorOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="The .lmgc file to write.")],
    serialization: Annotated[str, typer.Option("--serialization", "-s", help="hex-none, hex-space, hex-comma, "
                                               "hex-comma+space, hex-semicolon, hex-0x, iso, iso-space, "
                                               "iso-comma+space.")] = "hex-space",
    bytes_per_group: Annotated[str, typer.Option("--bytes-per-group", "-g", help="Bytes per group: a positive integer (the reference uses 1, 2, 3, 4 or 8) or none.")] = "4",
    window: WindowOpt = None,
    checkpoint: CheckpointOpt = None,
    threads: ThreadsOpt = 1,
    dtype: DtypeOpt = "float32",
    floor: Annotated[float, typer.Option("--floor", help="Probability mass spread over the vocabulary "
                                         "(every token gets at least floor / V).")] = 1e-4,
    context: Annotated[str, typer.Option("--context", help="window: one forward pass per window (fast to encode, "
                                         "window - 1 passes per window to decode); cache: a KV cache on both sides "
                                         "(GPT-2 priors; one step per token either way: decoding ~15x faster, "
                                         "encoding ~15x slower). Recorded in the file.")] = "window",
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    format: FormatOpt = "table",
) -> None:
    """Compress float32 numbers losslessly: serialize to text, range-code every token with the prior's
    probabilities (docs/lmgc.md, "Coding")."""
    from sublora.cli.console import err, out as stdout
    from sublora.lmgc.codec import CodecSettings
    from sublora.lmgc.files import compress_file
    from sublora.lmgc.prior import CLI_WINDOW
    from sublora.lmgc.serialize import parse_bytes_per_group

    _format(format)
    settings = CodecSettings.make(serialization=serialization, bytes_per_group=parse_bytes_per_group(bytes_per_group),
                             window=window, floor=floor, context=context)
    with _bar("encode") as progress:
        result = compress_file(file, out, prior, settings, checkpoint=_checkpoint(checkpoint), threads=threads,
                               dtype=dtype, default_window=CLI_WINDOW, force=force, progress=progress)
    err.print(f"prior: {result['prior']}", highlight=False)
    if format == "json":
        stdout.print_json(json.dumps({"out": str(out), **result}))
        return
    stdout.print(
        f"{out}: {result['raw_bytes']:,} bytes -> {result['payload_bytes']:,} coded bytes, rate "
        f"{result['rate']:.2f} % (file with header: {result['file_rate']:.2f} %; sum -log2 p: "
        f"{result['ideal_rate']:.2f} %, coder overhead {result['overhead_bytes']:.1f} bytes); "
        f"{result['tokens']:,} tokens in {result['windows']} windows of {result['window']}; "
        f"{result['tokens_per_second']:,.0f} tokens/s, {result['mb_per_hour']:.2f} MB/hour",
        highlight=False)


def decompress(
    file: Annotated[Path, typer.Argument(help="A .lmgc file written by `sublora lmgc compress`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The raw float32 file to write.")],
    prior: Annotated[Optional[str], typer.Option("--prior", help="The prior \\[default: the one named in the "
                                                 "file's header]; refused unless its identity is the header's.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Decode even if torch, transformers, "
                                                 "constriction or the CPU kernels differ from the encoder's (the "
                                                 "sha256 check still refuses wrong bytes).")] = False,
    format: FormatOpt = "table",
) -> None:
    """Rebuild the exact bytes of a .lmgc file (sha256 checked). Decoding runs the prior once per token: a
    file compressed with --context cache decodes one cached step per token, one compressed with the default
    --context window re-runs the whole window per token, ~16x slower (docs/lmgc.md, "Coding")."""
    from sublora.cli.console import err, out as stdout
    from sublora.lmgc.files import decompress_file

    _format(format)
    with _bar("decode") as progress:
        result = decompress_file(file, out, prior, force=force, allow_mismatch=allow_mismatch, progress=progress)
    err.print(f"prior: {result['prior']}", highlight=False)
    for warning in result["warnings"]:
        err.print(f"[yellow]warning:[/] encoded under another environment ({warning}); the bytes matched anyway")
    if format == "json":
        stdout.print_json(json.dumps({"out": str(out), **result}))
        return
    stdout.print(f"{out}: {result['raw_bytes']:,} bytes, sha256 {result['sha256'][:16]}... matches; "
                 f"{result['tokens']:,} tokens in {result['decode_seconds']:.1f} s "
                 f"({result['tokens_per_second']:,.0f} tokens/s)", highlight=False)


def bench(
    grads: Annotated[Path, typer.Argument(help="A gradient directory (one checkpoint: --checkpoint) or a raw "
                                          "float32 file.")],
    prior: PriorOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for bench.csv, bench.json, bench.png.")],
    serializations: Annotated[Optional[list[str]], typer.Option(
        "--serializations", help="Comma-separated (or repeated); 'all' for every one \\[default: hex-space].")] = None,
    bytes_per_group: Annotated[Optional[list[str]], typer.Option(
        "--bytes-per-group", help="Comma-separated positive integers or none; 'all' for the reference's 1, 2, 3, 4, 8 "
        "and none \\[default: 4].")]
    = None,
    window: WindowOpt = None,
    checkpoint: CheckpointOpt = None,
    max_bytes: Annotated[Optional[int], typer.Option(
        "--max-bytes", min=4, help="Code at most this many bytes: evenly spaced 512-byte chunks, the same for "
        "every method \\[default: all].")] = None,
    threads: ThreadsOpt = 1,
    dtype: DtypeOpt = "float32",
    baselines: Annotated[bool, typer.Option("--baselines/--no-baselines", help="Also run the classical codecs.")]
    = True,
    plot: Annotated[bool, typer.Option("--plot/--no-plot", help="Write bench.png (needs matplotlib).")] = True,
) -> None:
    """Rate of LM-GC per serialization x bytes per group next to the classical codecs (whole stream and
    per 512-byte chunk) on the same bytes: a table here, bench.csv + bench.json + bench.png in --out."""
    import torch
    from rich.table import Table

    from sublora.cli.console import err, out as stdout
    from sublora.lmgc import bench as lib
    from sublora.lmgc.container import environment
    from sublora.lmgc.files import read_input
    from sublora.lmgc.prior import CLI_WINDOW, load_prior

    names, groups = lib.parse_serializations(serializations), lib.parse_groups(bytes_per_group)
    raw, info = read_input(grads, _checkpoint(checkpoint))
    raw, sampled = lib.sample_chunks(raw, max_bytes)
    loaded = load_prior(prior, dtype=dtype)
    use_window = loaded.window(window, CLI_WINDOW)
    err.print(f"prior: {loaded.describe()}", highlight=False)
    torch.set_num_threads(threads)
    rows = []
    with _bar("lm-gc") as progress:
        n = len(names) * len(groups)
        done = {"k": 0}

        def tick(label: str, d: int, t: int) -> None:
            progress(done["k"] * t + d, n * t)
            if d == t:
                done["k"] += 1

        rows += lib.lmgc_rows(raw, loaded, names, groups, window=use_window, progress=tick)
    if baselines:
        rows += lib.baseline_rows(raw)
    meta = {"input": info, "sampled": sampled, "raw_bytes": len(raw), "prior": loaded.describe(),
            "prior_spec": loaded.spec, "prior_identity": loaded.identity, "zero_shot": loaded.saw.get("zero_shot"),
            "window": use_window, "threads": threads, "environment": environment(threads),
            "title": f"{info.get('path')} ({len(raw):,} bytes), prior {Path(loaded.spec.split(':')[0]).name}"}
    written = lib.write_results(out, rows, meta, plot=plot)
    table = Table(title=f"rate = 100 x compressed / raw, {len(raw):,} bytes; lower is better")
    for col in ("method", "serialization", "bytes/group", "mode", "rate %", "ideal %", "tokens/float", "tokens/s",
                "MB/hour"):
        table.add_column(col, justify="left" if col in ("method", "serialization", "mode") else "right")

    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    best = lib.best_baseline(rows)
    for r in rows:
        group = "" if r["method"] != "lm-gc" else ("none" if r["bytes_per_group"] is None else str(r["bytes_per_group"]))
        rate_text = num(r.get("rate"), ".2f") if r.get("rate") is not None else r.get("status", "")
        style = "bold" if r is best or (r["method"] == "lm-gc" and best and r["rate"] < best["rate"]) else None
        table.add_row(r["method"], r.get("serialization") or "", group, r["mode"], rate_text,
                      num(r.get("ideal_rate"), ".2f"), num(r.get("tokens_per_float"), ".2f"),
                      num(r.get("tokens_per_second"), ",.0f"), num(r.get("mb_per_hour"), ".3f"), style=style)
    stdout.print(table)
    stdout.print("wrote " + ", ".join(str(p) for p in written), highlight=False)
