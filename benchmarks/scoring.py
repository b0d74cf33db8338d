"""Scoring tokens/s for the bounds: today's forward (theta split into views, peft LoRA per call) against
the merged network (sublora.bounds.inference) in float32 and in bfloat16 (`bound.dtype`), on the main
job's model shape (configs/default.yaml).

Token-level scoring (`score_token_blocks`: forward + every statistic of the evidence) of the same blocks,
both variants interleaved, medians after a warm-up, at 1 and 2 torch threads; prints tokens/s, the
ratio, the largest per-block loss difference between the two, and the time to score every block of
the main job's training stream (91,113 blocks of 128 tokens) at the measured speed. The machine load
is printed: ratios measured in one sitting hold, absolute figures on a busy machine do not.

    .venv/bin/python benchmarks/scoring.py [--blocks 256] [--repeats 5] [--threads 1 2] [--compile]

``--compile`` also times the merged network and the evidence statistics under ``torch.compile``
(inductor, CPU) in float32 and bfloat16: a lever measured, not used by ``sublora bound`` (compiled
kernels round differently from eager ones, so a compiled scorer would be another predictor to verify).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB_BLOCKS = 91_113  # training blocks of the main job (11.66 M tokens in blocks of 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--compile", action="store_true", help="also torch.compile'd scoring (slow to start)")
    args = parser.parse_args()

    import sublora.bounds.evaluate as evaluate
    from sublora.bounds.evaluate import score_token_blocks
    from sublora.bounds.inference import merged_predictor, unmerged_predictor
    from sublora.core.build import build_model
    from sublora.core.config import RunConfig

    import yaml

    config = RunConfig.from_dict(yaml.safe_load((ROOT / "configs" / "default.yaml").read_text()))
    block, b = config.model.block_size, config.bound
    model = build_model(config, 257, 256)
    with torch.no_grad():
        model.w.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    model.eval()
    tokens = np.random.default_rng(0).integers(0, 257, size=block * 4 * args.blocks + 1).astype(np.uint16)
    print(f"main-job model: {config.model.preset}, block {block}, D={model.D}, d={model.d}, "
          f"bound.batch_size={b.batch_size}, {args.blocks} blocks per call; load average {os.getloadavg()}")
    print(f"{'threads':>7} {'today tok/s':>12} {'merged tok/s':>13} {'ratio':>6} {'max |diff| bits':>16} "
          f"{'all 91,113 blocks':>18} {'bf16 tok/s':>11} {'ratio':>6} {'bf16 max |diff|':>16} {'bf16 mean diff':>15}")
    eager_stats = evaluate.score_logits
    compiled_stats = torch.compile(eager_stats, dynamic=False) if args.compile else eager_stats
    for threads in args.threads:
        torch.set_num_threads(threads)

        predictors = {"today": unmerged_predictor(model), "merged": merged_predictor(model),
                      "bf16": merged_predictor(model, dtype=torch.bfloat16)}
        if args.compile:
            predictors["merged+compile"] = torch.compile(predictors["merged"], dynamic=False)
            predictors["bf16+compile"] = torch.compile(predictors["bf16"], dynamic=False)

        def run(name):
            evaluate.score_logits = compiled_stats if name.endswith("+compile") else eager_stats
            try:
                return score_token_blocks(model, tokens, block, tuple(b.alphas), args.blocks, seed=1,
                                          batch_size=b.batch_size, topk=b.topk, vocab=257, predict=predictors[name])
            finally:
                evaluate.score_logits = eager_stats

        results, compile_seconds = {}, {}
        for name in predictors:  # warm-up (and the values compared); the first call compiles
            t0 = time.perf_counter()
            results[name] = run(name)
            compile_seconds[name] = time.perf_counter() - t0
        times: dict[str, list[float]] = {name: [] for name in predictors}
        for _ in range(args.repeats):
            for name in predictors:
                t0 = time.perf_counter()
                run(name)
                times[name].append(time.perf_counter() - t0)
        rate = {name: args.blocks * block / statistics.median(ts) for name, ts in times.items()}
        diff = float(np.abs(results["today"].loss - results["merged"].loss).max())
        minutes = MAIN_JOB_BLOCKS * block / rate["merged"] / 60
        bf16 = results["bf16"].loss - results["merged"].loss
        print(f"{threads:>7} {rate['today']:>12,.0f} {rate['merged']:>13,.0f} {rate['merged'] / rate['today']:>5.2f}x "
              f"{diff:>16.2e} {minutes:>14.1f} min {rate['bf16']:>11,.0f} {rate['bf16'] / rate['merged']:>5.2f}x "
              f"{np.abs(bf16).max():>16.2e} {bf16.mean():>15.2e}")
        for name in (n for n in predictors if n.endswith("+compile")):
            base = name.removesuffix("+compile")
            print(f"{'':>7} {name}: {rate[name]:,.0f} tok/s = {rate[name] / rate[base]:.2f}x {base} "
                  f"(first call {compile_seconds[name]:.1f} s; max |diff| of block losses from {base}: "
                  f"{np.abs(results[name].loss - results[base].loss).max():.1e} bits)")


if __name__ == "__main__":
    main()
