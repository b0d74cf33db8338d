"""Time and memory of `sublora bound-model` per million parameters (issue 13.2).

Random GPT-2s with a byte vocabulary (257) are saved to disk with the byte tokenizer and bounded on a corpus
of stdlib source cut into ~2 KB documents. Each size runs in its own process (peak RSS is per process), sizes
interleaved over --repeats rounds; medians are printed with the load average (a busy machine inflates times,
not the per-parameter ratios between sizes measured in one sitting).

    .venv/bin/python benchmarks/posthoc.py [--sizes 6x512,12x512] [--repeats 1] [--token-blocks 16] [--doc-samples 4]

Columns: parameters; bits/parameter of model.slc; quantize + code seconds and decode seconds per million
parameters; scoring seconds per million parameters per thousand tokens scored; peak RSS (MB) and its excess
over the same process after loading torch + transformers and the model, per million parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def corpus(root: Path, chunk: int = 2048, limit: int = 400) -> Path:
    """~limit documents of ``chunk`` bytes of stdlib source: short documents keep document scoring cheap."""
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        text = path.read_text(errors="ignore")
        for i in range(0, len(text) - chunk, chunk):
            (root / f"{n:05d}.txt").write_text(text[i: i + chunk])
            n += 1
            if n >= limit:
                return root
    return root


def child(args) -> None:
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    from transformers import GPT2Config, GPT2LMHeadModel

    from sublora.bounds.export import byte_tokenizer
    from sublora.bounds.posthoc.certify import bound_model
    from sublora.bounds.posthoc.settings import PosthocSettings

    layers, width = (int(x) for x in args.child.split("x"))
    model_dir = Path(args.work) / f"gpt2-{args.child}"
    if not (model_dir / "config.json").is_file():
        torch.manual_seed(0)
        net = GPT2LMHeadModel(GPT2Config(vocab_size=257, n_positions=args.block, n_embd=width, n_layer=layers,
                                         n_head=width // 64, bos_token_id=256, eos_token_id=256))
        net.save_pretrained(model_dir)
        byte_tokenizer().save_pretrained(model_dir)
        del net
    from sublora.bounds.posthoc.predictor import load_causal_lm

    t = time.perf_counter()
    base_net = load_causal_lm(model_dir)
    load_s = time.perf_counter() - t
    params = sum(p.numel() for p in base_net.parameters())
    del base_net
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = PosthocSettings.from_overrides({"bound.token_blocks": args.token_blocks,
                                               "bound.doc_samples": args.doc_samples, "block_size": args.block})
    cert = bound_model(model_dir, args.data, Path(args.work) / f"out-{args.child}", settings, force=True)
    r = cert["resources"]
    scored = cert["evaluation"]["token_level"]["blocks_evaluated"] * args.block + \
        cert["evaluation"]["document_level"]["tokens_scored"]
    print(json.dumps({"size": args.child, "parameters": params, "bits_per_parameter": cert["bits_per_parameter"],
                      "code_bits": cert["code_bits"], "load_s": load_s, **r["seconds"], "tokens_scored": scored,
                      "peak_rss_mb": r["peak_rss_mb"], "rss_after_load_mb": base_rss,
                      "loss": cert["losses_bits_per_token"], "headline": cert["headline"].get("value"),
                      "azuma": next(b["value"] for b in cert["bounds"] if b["name"] == "token_azuma_bpd"),
                      "n_tokens": cert["evaluation"]["token_level"]["n"]}))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="6x512,12x512")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--token-blocks", type=int, default=16)
    p.add_argument("--doc-samples", type=int, default=4)
    p.add_argument("--work", default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--child", default=None)
    args = p.parse_args()
    if args.child:
        return child(args)
    work = Path(args.work or tempfile.mkdtemp(prefix="posthoc-bench-"))
    if args.data is None:
        from sublora.bounds.posthoc.data import open_data

        args.data = str(open_data(corpus(work / "corpus"), None).path)
    rows: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for size in args.sizes.split(","):
            cmd = [sys.executable, __file__, "--child", size, "--work", str(work), "--data", args.data,
                   "--block", str(args.block), "--token-blocks", str(args.token_blocks),
                   "--doc-samples", str(args.doc_samples)]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if done.returncode:
                sys.exit(done.stderr[-3000:])
            rows.setdefault(size, []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores); 1 torch thread; medians of {args.repeats} round(s)")
    print("| model | parameters | bits/param | quantize+code s/M | decode s/M | score s/(M params x 1k tokens) "
          "| peak RSS MB | (peak - after load) MB/M | train loss bits/token orig -> quant | token Azuma bound (n tokens) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size, runs in rows.items():
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        m = runs[0]["parameters"] / 1e6
        print(f"| gpt2 {size} | {runs[0]['parameters']:,} | {med('bits_per_parameter'):.3f} | "
              f"{med('quantize_and_code') / m:.3f} | {med('decode') / m:.3f} | "
              f"{med('score') / m / (runs[0]['tokens_scored'] / 1000):.3f} | {med('peak_rss_mb'):.0f} | "
              f"{(med('peak_rss_mb') - med('rss_after_load_mb')) / m:.1f} | "
              f"{runs[0]['loss']['original_train']:.3f} -> {runs[0]['loss']['quantized_train']:.3f} | "
              f"{runs[0]['azuma']:.2f} ({runs[0]['n_tokens']:,}) |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
