"""Training step time: the GPT-2 implementations (model.impl), SubLoRA vs plain LoRA, and the levers tried.

Prints a table of median step times (interleaved runs after a warm-up, torch threads fixed) for
  - the reference configuration (2 layers, 4 heads, 128 wide, block 128, batch 8, d = 1000,
    byte vocabulary, one thread; the reference code took ~0.04 s per step on this machine), and
  - the main job's default model (`sublora run`), with its thread count,
with plain LoRA (transformers + peft, no subspace) and the subspace step of every implementation
and projector. ``vs hf`` is the speed-up over ``model.impl=hf`` with the same projector (>1: faster);
``max |dloss|`` the largest difference of the training losses from hf's over the same steps (the same
init, batches and optimizer: only float rounding may differ).

    .venv/bin/python benchmarks/train_step.py [--repeats 30] [--impls hf,lean] [--compile] [--levers]

``--compile`` adds ``<impl>+compile`` rows (torch.compile of the loss, inductor's CPU backend; the compile
seconds are printed: they count against a run). ``--levers`` measures, on the main-job shape with the lean
model: 2 threads vs 1, batch 16 vs 8 (per token), SDPA's math kernel vs flash, bf16 autocast
(``train.dtype=bfloat16``) and the projector's share.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

V = 257


def make_config(model: dict, d: int, projector: str, threads: int, impl: str = "hf"):
    from sublora.core.config import RunConfig

    return RunConfig.from_dict({"model": {**model, "impl": impl}, "sublora": {"intrinsic_dim": d, "projector": projector},
                                "train": {"threads": threads}})


def batch_of(batch: int, block: int):
    gen = torch.Generator().manual_seed(0)
    return torch.randint(0, V, (batch, block), generator=gen), torch.randint(0, V, (batch, block), generator=gen)


def subspace_step_fn(config, batch, block, compile: bool = False, losses: list | None = None):
    """The same work as sublora.core.train's inner loop with grad_accum = 1 (w starts off zero, seeded)."""
    from sublora.core.build import build_model

    model = build_model(config, V, V - 1)
    model.train()
    with torch.no_grad():
        model.w.copy_(torch.randn(model.d, generator=torch.Generator().manual_seed(1)) * 0.1)
    opt = torch.optim.AdamW([model.w], lr=1e-3)
    x, y = batch_of(batch, block)
    loss_fn = torch.compile(model.loss, dynamic=False) if compile else model.loss

    def step():
        theta = model.flat_params()
        leaf = theta.detach().requires_grad_(True)
        loss = loss_fn(x, y, leaf)
        loss.backward()
        theta.backward(leaf.grad)
        torch.nn.utils.clip_grad_norm_([model.w], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if losses is not None:
            losses.append(loss.item())

    return step, model


def plain_lora_step_fn(config, batch, block):
    from sublora.core.model import add_lora, build_base_model

    net = add_lora(build_base_model(config.model, V, V - 1), config.lora, config.model.init_seed)
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    x, y = batch_of(batch, block)

    def step():
        logits = net(x, use_cache=False).logits
        F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, sum(p.numel() for p in params)


def measure(fns: dict, repeats: int, warmup: int = 5, threads: dict | None = None, block: int = 1) -> dict[str, float]:
    """Median seconds per call of each fn, interleaved so a busy moment hits every variant alike.

    ``threads`` sets a variant's torch thread count; changing it costs time (OpenMP's pool), so variants
    then run in blocks of ``block`` calls and the first call after a change is not timed.
    """
    threads, default = threads or {}, torch.get_num_threads()
    for name, fn in fns.items():
        torch.set_num_threads(threads.get(name, default))
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if threads:
                torch.set_num_threads(threads.get(name, default))
                fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    torch.set_num_threads(default)
    return {name: statistics.median(ts) for name, ts in times.items()}


def setups(args) -> dict:
    from sublora.core.config import RunConfig

    default = RunConfig()
    d = args.d or default.sublora.intrinsic_dim
    ref_threads, main_threads = args.threads or 1, args.threads or default.train.threads

    def threads(n: int) -> str:
        return f"{n} thread{'s' * (n > 1)}"

    out = {
        f"reference (2x128, B=8, T=128, d=1000, {threads(ref_threads)})": (
            {"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 128}, 1000, 8, 128, ref_threads),
        f"main job default ({default.model.preset}, d={d}, {threads(main_threads)})": (
            {"preset": default.model.preset, "block_size": default.model.block_size}, d,
            default.train.batch_size, default.model.block_size, main_threads),
    }
    return dict(list(out.items())[1:]) if args.only_main else out


def step_table(args) -> None:
    impls = args.impls.split(",")
    print(f"{'setup':50s} {'impl':14s} {'projector':10s} {'D':>6s} {'step [s]':>9s} {'tok/s':>7s} {'vs hf':>6s} "
          f"{'max |dloss|':>11s}")
    for title, (model, d, batch, block, threads) in setups(args).items():
        torch.set_num_threads(threads)
        fns, rows, losses, compile_s = {}, {}, {}, {}
        fns["plain LoRA"], size = plain_lora_step_fn(make_config(model, d, "dense", threads), batch, block)
        rows["plain LoRA"] = ("hf (peft)", "-", size)
        for spec in args.projectors.split(","):
            for impl in impls:
                for compiled in ((False, True) if args.compile else (False,)):
                    name = f"{impl}{'+compile' if compiled else ''} {spec}"
                    losses[name] = []
                    fns[name], m = subspace_step_fn(make_config(model, d, spec, threads, impl), batch, block,
                                                    compiled, losses[name])
                    rows[name] = (impl + ("+compile" if compiled else ""), spec, m.D)
                    if compiled:  # the first call compiles: its time counts against a run
                        t = time.perf_counter()
                        fns[name]()
                        compile_s[name] = time.perf_counter() - t
        medians = measure(fns, args.repeats)
        for name, t in medians.items():
            impl, spec, size = rows[name]
            ref = f"hf {spec}"
            speedup = f"{medians[ref] / t:6.2f}" if ref in medians else f"{'-':>6s}"
            dloss = (f"{max(abs(a - b) for a, b in zip(losses[name], losses[ref])):11.1e}"
                     if name in losses and ref in losses else f"{'-':>11s}")
            print(f"{title[:50]:50s} {impl:14s} {spec:10s} {size:6d} {t:9.4f} {batch * block / t:7.0f} {speedup} {dloss}")
        for name, s in compile_s.items():
            print(f"{title[:50]:50s} {name}: first call (compile) {s:.1f} s")


def levers(args) -> None:
    """The levers that are not an implementation, each against the lean step on the main-job shape."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    title, (model, d, batch, block, threads) = list(setups(args).items())[-1]
    config = make_config(model, d, args.projectors.split(",")[0], threads, "lean")
    base, m = subspace_step_fn(config, batch, block)
    big, _ = subspace_step_fn(config, 2 * batch, block)
    theta = m.flat_params()

    def math_attention():
        with sdpa_kernel(SDPBackend.MATH):
            base()

    def bf16_autocast():  # train.dtype=bfloat16: the forward under autocast, w and AdamW in float32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            base()

    def projector():  # theta = theta0 + P w and its backward, as each step does once
        m.flat_params().backward(theta.detach())
        m.w.grad = None

    fns = {"lean, 1 thread": base, "lean, 2 threads": base, f"lean, batch {2 * batch} (per {batch} rows)": big,
           "lean, SDPA math kernel": math_attention, "lean, bf16 autocast": bf16_autocast,
           "projector fwd+bwd only": projector}
    medians = measure(fns, max(args.repeats // 3, 5), block=3,
                      threads={name: 2 if name == "lean, 2 threads" else 1 for name in fns})
    medians[f"lean, batch {2 * batch} (per {batch} rows)"] /= 2
    ref = medians["lean, 1 thread"]
    print(f"\nlevers on {title[:title.index('(')]}shape (lean, 1 thread unless named; ratio = time / lean at "
          f"1 thread, batch {batch}; <1 is faster)")
    for name, t in medians.items():
        print(f"  {name:40s} {t:9.4f} s  {t / ref:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--projectors", default="rdkron:qr,rdkron,dense")
    parser.add_argument("--impls", default="hf,lean", help="model.impl values to compare (hf first: the ratios' base)")
    parser.add_argument("--compile", action="store_true", help="also each impl with torch.compile (slow to start)")
    parser.add_argument("--levers", action="store_true", help="threads, batch, SDPA kernel and projector share")
    parser.add_argument("--d", type=int, default=None, help="intrinsic dimension for the main-job setup")
    parser.add_argument("--only-main", action="store_true", help="skip the reference configuration")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every setup (default: each setup's own; on a loaded machine 1)")
    args = parser.parse_args()
    step_table(args)
    if args.levers:
        levers(args)


if __name__ == "__main__":
    main()
