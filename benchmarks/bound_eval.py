"""Scoring speed for the bounds, next to the training speed of the same model.

Prints one table of medians over interleaved runs after a warm-up, with torch
threads set by --threads (printed, with the load average: numbers measured on
a busy machine are inflated, ratios measured in one run are not):
  - the main job's model (`RunConfig()` defaults): training tokens/s (forward +
    backward + AdamW step, as sublora.core.train), token-level and
    document-level scoring tokens/s, and their ratio to training. The rule of
    thumb says forward-only scoring runs ~3x training; here the base weights
    are frozen, so backward computes no weight gradients and ~2x is nearer the
    ceiling (1 thread, busy machine: 2.0x token, 2.1x document level);
  - the reference scale: 300 documents of ~258 tokens, a 2-layer, 4-head,
    128-wide GPT-2 at block 128 with byte vocabulary, scored at document level
    with the default alphas and top-k: wall time against the reference code's
    5 min 44 s (344 s) on this machine; target at least 10x faster (< 34 s);
  - with --run RUN: the wall time of one `sublora bound RUN --force` (rewrites
    RUN's certificate);
  - with --baseline REV: the same scoring with evaluate.py as of git revision
    REV, interleaved with the working tree's, and the speed-up (before/after).

    .venv/bin/python benchmarks/bound_eval.py [--threads 2] [--repeats 5] [--baseline HEAD] [--run runs/main]

Documents are synthetic (random bytes, seeded): scoring time does not depend on
the text. Corpora are large enough that the sampled documents are nearly all
distinct (a document drawn twice is scored once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
EVALUATE = "packages/bounds/src/sublora/bounds/evaluate.py"
REFERENCE_SECONDS = 344.0  # the reference implementation, reference scale, this machine
V, EOT = 257, 256  # byte vocabulary


def synthetic_corpus(lengths: np.ndarray, seed: int):
    """Random byte documents of the given lengths, each ending with its end-of-text token."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    tokens = np.random.default_rng(seed).integers(0, EOT, size=int(ends[-1])).astype(np.uint16)
    tokens[ends - 1] = EOT
    return tokens, starts, ends


def load_evaluate(rev: str | None) -> types.ModuleType:
    """evaluate.py of the working tree, or as of git revision ``rev``."""
    if rev is None:
        from sublora.bounds import evaluate

        return evaluate
    source = subprocess.run(["git", "show", f"{rev}:{EVALUATE}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"evaluate@{rev}")
    exec(compile(source, f"{rev}:{EVALUATE}", "exec"), module.__dict__)
    return module


def measure(fns: dict, repeats: int, warmup: int = 1) -> dict[str, tuple[float, int]]:
    """Median seconds per call and the tokens a call processes (its return value).

    Runs are interleaved, so a busy moment hits every variant alike.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times, tokens = {name: [] for name in fns}, {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            tokens[name] = fn()
            times[name].append(time.perf_counter() - t)
    return {name: (statistics.median(ts), tokens[name]) for name, ts in times.items()}


def speedup(name: str, medians: dict[str, tuple[float, int]]) -> str:
    """For a baseline row ("... [REV]"): how much faster the working tree does the same work."""
    current = name.split(" [")[0]
    return f"; working tree {medians[name][0] / medians[current][0]:.2f}x faster" if current != name else ""


def scorers(model, config, evaluates: dict[str, types.ModuleType], args) -> dict:
    """Token-level and document-level scoring calls on the main job's model; each returns the tokens it scored."""
    b, block = config.bound, config.model.block_size
    stream, _, _ = synthetic_corpus(np.array([args.token_blocks * block * 20]), seed=1)
    lengths = np.random.default_rng(2).lognormal(np.log(300), 1.0, size=2000)  # short and long documents
    tokens, starts, ends = synthetic_corpus(np.clip(lengths, 8, 4096).astype(np.int64), seed=3)
    fns = {}
    for tag, ev in evaluates.items():
        fns[f"token-level scoring{tag}"] = lambda ev=ev: ev.score_token_blocks(
            model, stream, block, b.alphas, args.token_blocks, seed=0, batch_size=b.batch_size).blocks * block
        fns[f"document-level scoring{tag}"] = lambda ev=ev: ev.score_documents(
            model, tokens, starts, ends, EOT, block, b.doc_stride or block, b.alphas, b.topk,
            args.documents, seed=0, batch_size=b.batch_size).tokens_scored
    return fns


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measure (reference scale: about half)")
    parser.add_argument("--token-blocks", type=int, default=64, help="token-level blocks per scoring call")
    parser.add_argument("--documents", type=int, default=32, help="documents per document-level scoring call")
    parser.add_argument("--baseline", default=None, metavar="REV", help="also time evaluate.py as of this git revision")
    parser.add_argument("--run", type=Path, default=None, help="also time `sublora bound RUN --force`")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from train_step import subspace_step_fn

    from sublora.core.build import build_model
    from sublora.core.config import RunConfig

    torch.set_num_threads(args.threads)
    evaluates = {"": load_evaluate(None)}
    if args.baseline:
        evaluates[f" [{args.baseline}]"] = load_evaluate(args.baseline)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []  # (section, measure, value, unit, note)

    # 1. The main job's model: training against scoring, in one process.
    config = RunConfig()
    shape, block, batch = config.model.shape(), config.model.block_size, config.train.batch_size
    title = (f"main job ({config.model.preset}: {shape['n_layer']}x{shape['n_head']}x{shape['n_embd']}, "
             f"block {block}, {config.sublora.projector} d={config.sublora.intrinsic_dim})")
    step, _ = subspace_step_fn(config, batch, block, V)

    def train(steps: int = 4) -> int:
        for _ in range(steps):
            step()
        return steps * batch * block

    model = build_model(config, V, EOT)
    training = "training (fwd+bwd+AdamW)"
    medians = measure({training: train, **scorers(model, config, evaluates, args)}, args.repeats)
    train_rate = medians[training][1] / medians[training][0]
    for name, (t, tokens) in medians.items():
        rate = tokens / t
        note = "" if name == training else f"{rate / train_rate:.2f}x training"
        rows.append((title, name, f"{rate:,.0f}", "tok/s", note + speedup(name, medians)))

    # 2. The reference scale: 300 short documents, document level only.
    ref_config = RunConfig.from_dict({"model": {"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 128},
                                      "sublora": {"intrinsic_dim": 1000}})
    ref_model = build_model(ref_config, V, EOT)
    lengths = np.random.default_rng(4).integers(200, 317, size=100_000)  # mean ~258; 300 draws nearly all distinct
    tokens, starts, ends = synthetic_corpus(lengths, seed=5)
    b = ref_config.bound
    title = "reference scale (300 docs of ~258 tokens, 2x4x128, block 128, bytes)"
    fns = {f"document-level scoring{tag}": lambda ev=ev: ev.score_documents(
        ref_model, tokens, starts, ends, EOT, 128, 128, b.alphas, b.topk, 300, seed=0,
        batch_size=b.batch_size).tokens_scored for tag, ev in evaluates.items()}
    medians = measure(fns, max(1, (args.repeats + 1) // 2))
    for name, (t, scored) in medians.items():
        note = f"{REFERENCE_SECONDS / t:.1f}x faster than the reference's {REFERENCE_SECONDS:.0f} s (target >= 10x)"
        rows.append((title, f"{name}, wall", f"{t:.2f}", "s", note + speedup(name, medians)))
        rows.append((title, f"{name}, {scored:,} tokens", f"{scored / t:,.0f}", "tok/s", ""))

    # 3. Optionally the whole `sublora bound` of a trained run.
    if args.run is not None:
        sublora = Path(sys.executable).with_name("sublora")
        t = time.perf_counter()
        result = subprocess.run([str(sublora), "bound", str(args.run), "--force"], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:])
            raise SystemExit(f"sublora bound failed with exit code {result.returncode}")
        rows.append((f"sublora bound {args.run} --force (one run; its own threads)", "wall", f"{wall:.1f}", "s", ""))

    section = None
    for title, name, value, unit, note in rows:
        if title != section:
            print(f"\n{title}\n{'measure':56s} {'value':>10s} {'unit':6s} note")
            section = title
        print(f"{name:56s} {value:>10s} {unit:6s} {note}")
    print(f"\nload average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
