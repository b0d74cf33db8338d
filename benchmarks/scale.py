"""Time per step and memory of the reference shape (GPT-2 small, LoRA r 4 on attention + head, rdkron:qr) on
this machine, one thread, batch 1: the measurement docs/scale.md extrapolates from.

    OMP_NUM_THREADS=1 python benchmarks/scale.py            # every shape, each in a fresh process
    OMP_NUM_THREADS=1 python benchmarks/scale.py --one 256 50000 3   # one shape: block, d, timed steps

Per shape it reports: the time to build theta0 and P; per micro-batch the forward + backward time into
theta (the part that grows with tokens and model size); per optimizer step the projection's time (theta =
theta0 + P w forward, and theta.grad back into w: the part that grows with D and d); the peak resident
memory of the process; and the FLOPs per token of the model by the count in docs/scale.md, so that
FLOP/s = flops x tokens / seconds says how fast this CPU ran the step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

SHAPES = [(256, 25_000, 3), (256, 50_000, 3), (256, 100_000, 3), (1024, 50_000, 2)]
VOCAB = 50257


def flops_per_token(n_layer: int, n_embd: int, block: int, vocab: int, lora_d: int) -> dict[str, float]:
    """Forward FLOPs per token (multiply-add = 2) of GPT-2 with its weights frozen and LoRA on top.

    matmuls: 12 n_layer n_embd^2 weights (attention 4 n^2, MLP 8 n^2) -> 2 x that; attention scores and
    values: 2 x 2 n_layer T n_embd (T = block, no causal halving); head: 2 n_embd V; LoRA: 2 x its numbers.
    Training a frozen base: backward computes input gradients only (as many FLOPs as the forward) plus the
    tiny LoRA weight gradients, so a training token costs ~2 x forward (not 3 x as for full training).
    """
    dense = 2 * 12 * n_layer * n_embd**2
    attention = 4 * n_layer * block * n_embd
    head = 2 * n_embd * vocab
    lora = 2 * lora_d
    forward = dense + attention + head + lora
    return {"forward": forward, "train": 2 * forward, "dense": dense, "attention": attention, "head": head}


def measure(block: int, d: int, steps: int) -> dict:
    import torch

    from sublora.core.build import build_model
    from sublora.core.config import RunConfig

    torch.set_num_threads(1)
    config = RunConfig.from_dict({
        "model": {"preset": "small", "block_size": block},
        "lora": {"r": 4, "alpha": 32.0, "attention": True, "head": True},
        "sublora": {"projector": "rdkron:qr", "intrinsic_dim": d},
        "train": {"threads": 1},
    })
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    model = build_model(config, VOCAB, VOCAB - 1)
    model.train()
    build_s = time.perf_counter() - t0
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    gen = torch.Generator().manual_seed(0)
    micro, project = [], []
    for i in range(steps + 1):  # the first is a warm-up
        x = torch.randint(0, VOCAB, (1, block), generator=gen)
        y = torch.randint(0, VOCAB, (1, block), generator=gen)
        t0 = time.perf_counter()
        theta = model.flat_params()
        theta_leaf = theta.detach().requires_grad_(True)
        t1 = time.perf_counter()
        loss = model.loss(x, y, theta_leaf)
        loss.backward()
        t2 = time.perf_counter()
        theta.backward(theta_leaf.grad)
        model.w.grad = None
        t3 = time.perf_counter()
        if i:
            micro.append(t2 - t1)
            project.append((t1 - t0) + (t3 - t2))
    n_layer, n_embd = 12, 768
    return {
        "block": block, "d": d, "D": int(model.D), "threads": torch.get_num_threads(), "steps": steps,
        "build_s": round(build_s, 2), "micro_batch_s": round(statistics.median(micro), 3),
        "projection_s": round(statistics.median(project), 4),
        "rss_base_mb": round(rss0 / 1024), "rss_built_mb": round(rss_built / 1024),
        "rss_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "flops_per_token": flops_per_token(n_layer, n_embd, block, VOCAB, int(model.D)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=3, type=int, metavar=("BLOCK", "D", "STEPS"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for block, d, steps in SHAPES:
        out = subprocess.run([sys.executable, __file__, "--one", str(block), str(d), str(steps)], env=env,
                             capture_output=True, text=True, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        tokens = row["block"]
        row["gflops_per_s"] = round(row["flops_per_token"]["train"] * tokens / row["micro_batch_s"] / 1e9, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| block | d | D | build (s) | fwd+bwd per sequence (s) | projection per step (s) | peak RSS (MB) | "
          "train GFLOP/token | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['block']} | {r['d']} | {r['D']} | {r['build_s']} | {r['micro_batch_s']} | {r['projection_s']} | "
              f"{r['rss_peak_mb']} | {r['flops_per_token']['train'] / 1e9:.3f} | {r['gflops_per_s']} |")


if __name__ == "__main__":
    main()
