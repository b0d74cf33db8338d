"""Training step time: SubLoRA (projector) vs plain LoRA on the same GPT-2.

Prints a table of median step times (interleaved runs after a warm-up) and
the ratio to plain LoRA, for
  - the reference configuration (2 layers, 4 heads, 128 wide, block 128,
    batch 8, d = 1000, byte vocabulary, one thread; the reference code took
    ~0.04 s per step on this machine), and
  - the main job's default model (`sublora run`), with its thread count.

    .venv/bin/python benchmarks/train_step.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F


def make_config(model: dict, d: int, projector: str, threads: int):
    from sublora.core.config import RunConfig

    return RunConfig.from_dict({"model": model, "sublora": {"intrinsic_dim": d, "projector": projector},
                                "train": {"threads": threads}})


def subspace_step_fn(config, batch, block, vocab=257):
    from sublora.core.build import build_model

    model = build_model(config, vocab, vocab - 1)
    model.train()
    opt = torch.optim.AdamW([model.w], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, block), generator=gen)
    y = torch.randint(0, vocab, (batch, block), generator=gen)

    def step():  # the same work as sublora.core.train's inner loop with grad_accum = 1
        theta = model.flat_params()
        leaf = theta.detach().requires_grad_(True)
        model.loss(x, y, leaf).backward()
        theta.backward(leaf.grad)
        torch.nn.utils.clip_grad_norm_([model.w], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, model.D


def plain_lora_step_fn(config, batch, block, vocab=257):
    from sublora.core.model import add_lora, build_base_model

    net = add_lora(build_base_model(config.model, vocab, vocab - 1), config.lora, config.model.init_seed)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, block), generator=gen)
    y = torch.randint(0, vocab, (batch, block), generator=gen)

    def step():
        logits = net(x, use_cache=False).logits
        F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in params)


def measure(fns: dict, repeats: int, warmup: int = 5) -> dict[str, float]:
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):  # interleaved, so a busy moment hits every variant alike
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--projectors", default="rdkron,rdkron:qr,dense")
    parser.add_argument("--d", type=int, default=None, help="intrinsic dimension for the main-job setup")
    parser.add_argument("--only-main", action="store_true", help="skip the reference configuration")
    args = parser.parse_args()
    from sublora.core.config import RunConfig

    default = RunConfig()
    setups = {
        "reference (2x128, B=8, T=128, d=1000, 1 thread)": (
            {"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 128}, 1000, 8, 128, 1),
        f"main job default ({default.model.preset}, d={args.d or default.sublora.intrinsic_dim}, {default.train.threads} threads)": (
            {"preset": default.model.preset, "block_size": default.model.block_size}, args.d or default.sublora.intrinsic_dim,
            default.train.batch_size, default.model.block_size, default.train.threads),
    }
    if args.only_main:
        setups = dict(list(setups.items())[1:])
    print(f"{'setup':58s} {'variant':12s} {'D':>8s} {'step [s]':>9s} {'tok/s':>9s} {'ratio':>6s}")
    for title, (model, d, batch, block, threads) in setups.items():
        torch.set_num_threads(threads)
        fns, sizes = {}, {}
        fns["plain LoRA"], sizes["plain LoRA"] = plain_lora_step_fn(make_config(model, d, "dense", threads), batch, block)
        for spec in args.projectors.split(","):
            fns[spec], sizes[spec] = subspace_step_fn(make_config(model, d, spec, threads), batch, block)
        medians = measure(fns, args.repeats)
        base = medians["plain LoRA"]
        for name, t in medians.items():
            print(f"{title:58s} {name:12s} {sizes[name]:8d} {t:9.4f} {batch * block / t:9.0f} {t / base:6.2f}")


if __name__ == "__main__":
    main()
