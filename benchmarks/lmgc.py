"""LM-GC's measured targets (issue 11), end to end and offline, on this machine.

    .venv/bin/python benchmarks/lmgc.py [--work /tmp/lmgc-bench] [--steps 1500] [--sample-kb 64]

Each step keeps its output in --work, so a rerun skips what is done:

1. Gradients (`sublora lmgc collect`, defaults: 500 steps, every 50): the digits ConvNet with
   seeds 0, 1, 2 and the MLP with seed 0. Seed 0 is held out: no prior sees its bytes.
2. Two priors with the same architecture and budget, only the data differs (`sublora train`, byte
   tokenizer, GPT-2 mini 4 x 128, context 256, LoRA r 16 on every projection, d = 20,000):
   - zero-shot: the embedded corpus (Python standard library), as the paper's priors never saw numbers;
   - neural parameter prior (issue item 6a): hex-space/4 text of the gradients of ConvNet seeds 1
     and 2 (steps 100, 200, ..., 500), marked NOT zero-shot.
3. Round trips: every serialization x both networks (seed 0's step-250 checkpoint, its first and
   last 512-byte chunk, so the zero padding is exercised), coded with the zero-shot prior and
   decoded by `decompress_file` (sha256 checked); hex-space also with the numbers prior.
4. Ablations on a --sample-kb sample (evenly spaced chunks) of the held-out ConvNet checkpoint: rate
   per serialization (4 bytes per group) and per bytes per group (hex-space), both priors.
5. Headline: the whole held-out ConvNet checkpoint (step 250, 1,194,024 bytes) and the whole MLP
   checkpoint, both priors at hex-space/4, next to every classical codec on the same bytes.
6. Speed: encode and decode tokens/s and MB/hour, next to the paper's ~28 MB in 4 hours (GPU).

Writes WORK/results.json and WORK/results.md (the tables of docs/lmgc.md, "Measured").
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

WINDOW = 256
HELD_OUT_STEP = 250
SERIALIZATIONS = ("hex-none", "hex-space", "hex-comma", "hex-comma+space", "hex-semicolon", "hex-0x", "iso",
                  "iso-space", "iso-comma+space")
GROUPS = (1, 2, 3, 4, 8, None)
PAPER_MB_PER_HOUR = 28 / 4


def collect_all(work: Path) -> dict[str, Path]:
    from sublora.lmgc.collect import collect, make_config

    dirs = {}
    for network, seed in (("convnet", 0), ("convnet", 1), ("convnet", 2), ("mlp", 0)):
        out = work / "grads" / f"{network}-seed{seed}"
        if not (out / "index.json").is_file() or not json.loads((out / "index.json").read_text()).get("weights"):
            t0 = time.perf_counter()
            collect(make_config(network=network, seed=seed), out, force=True, command="benchmarks/lmgc.py")
            print(f"collected {out} in {time.perf_counter() - t0:.0f} s", flush=True)
        dirs[f"{network}-seed{seed}"] = out
    return dirs


def numbers_corpus(work: Path, dirs: dict[str, Path]) -> Path:
    """hex-space/4 text of ConvNet seeds 1 and 2, one document per checkpoint (chunks joined as coded)."""
    from sublora.lmgc.gradients import raw_bytes
    from sublora.lmgc.prior import CORPUS_MARKER
    from sublora.lmgc.serialize import serialize_stream

    corpus = work / "corpus-numbers"
    marker = corpus / CORPUS_MARKER
    if marker.is_file():
        return corpus
    corpus.mkdir(parents=True, exist_ok=True)
    for name in ("convnet-seed1", "convnet-seed2"):
        for step in range(100, 501, 100):
            text = "".join(serialize_stream(raw_bytes(dirs[name], step), "hex-space", 4))
            (corpus / f"{name}-step{step}.txt").write_text(text)
    marker.write_text(json.dumps({"describe": "hex-space/4 text of the gradients of the digits ConvNet, seeds 1 "
                                  "and 2, steps 100-500 (seed 0 held out)", "serialization": "hex-space",
                                  "bytes_per_group": 4}))
    return corpus


def train_prior(out: Path, data: dict, steps: int) -> dict:
    """A prior's sublora run (the recipe both LM-GC benchmarks use), trained unless ``out`` holds it already."""
    from sublora.core.config import RunConfig
    from sublora.core.train import train

    manifest = out / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text()).get("status") not in ("trained", "bounded"):
        config = RunConfig.from_dict({
            "data": data,
            "model": {"preset": "mini", "block_size": WINDOW},
            "lora": {"r": 16, "mlp": True, "attention_output": True},
            "sublora": {"intrinsic_dim": 20000},
            "train": {"max_steps": steps, "lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 20, "eval_interval": 250,
                      "checkpoint_interval": 250, "threads": 1},
        })
        t0 = time.perf_counter()
        train(config, out)
        print(f"trained {out} in {time.perf_counter() - t0:.0f} s", flush=True)
    m = json.loads(manifest.read_text())
    return {"path": str(out), "steps": m["training"]["steps"], "seconds": m["training"]["seconds"],
            "val_bits_per_token": m["training"]["best_val_bpt"], "train_tokens": m["data"]["n_tokens"]["train"]}


def round_trips(work: Path, priors: dict, dirs: dict[str, Path]) -> list[dict]:
    from sublora.lmgc.bench import sample_chunks
    from sublora.lmgc.codec import CodecSettings
    from sublora.lmgc.files import compress_file, decompress_file
    from sublora.lmgc.gradients import raw_bytes

    rows, tmp = [], work / "roundtrip"
    tmp.mkdir(exist_ok=True)
    jobs = [(p, net, s) for net in ("convnet-seed0", "mlp-seed0") for s in SERIALIZATIONS for p in ("zero-shot",)]
    jobs += [("numbers", net, "hex-space") for net in ("convnet-seed0", "mlp-seed0")]
    for prior_name, net, serialization in jobs:
        raw, _ = sample_chunks(raw_bytes(dirs[net], HELD_OUT_STEP), 1024)  # the first and the last chunk
        src = tmp / f"{net}.f32"
        src.write_bytes(raw)
        packed, back = tmp / "x.lmgc", tmp / "x.f32"
        enc = compress_file(src, packed, priors[prior_name], CodecSettings(serialization=serialization,
                                                                            window=WINDOW), force=True)
        dec = decompress_file(packed, back, force=True)
        ok = back.read_bytes() == raw
        rows.append({"prior": prior_name, "network": net, "serialization": serialization, "bytes": len(raw),
                     "tokens": enc["tokens"], "bit_exact": ok, "rate": enc["rate"],
                     "encode_tokens_per_second": enc["tokens_per_second"],
                     "decode_tokens_per_second": dec["tokens_per_second"],
                     "decode_mb_per_hour": len(raw) / 1e6 / dec["decode_seconds"] * 3600})
        print(f"round trip {prior_name} {net} {serialization}: {'bit-exact' if ok else 'MISMATCH'} "
              f"({enc['tokens']} tokens, decode {dec['tokens_per_second']:.0f} tokens/s)", flush=True)
    return rows


def ablation(priors: dict, raw: bytes) -> list[dict]:
    from sublora.lmgc.bench import lmgc_rows

    rows = []
    for name, prior in priors.items():
        combos = [(s, 4) for s in SERIALIZATIONS] + [("hex-space", g) for g in GROUPS if g != 4]
        for serialization, group in combos:
            row = lmgc_rows(raw, prior, [serialization], [group], window=WINDOW)[0]
            rows.append({"prior": name, **row})
            print(f"ablation {name} {serialization}/{group}: {row['rate']:.2f} %", flush=True)
    return rows


def headline(priors: dict, dirs: dict[str, Path]) -> list[dict]:
    from sublora.lmgc.bench import baseline_rows, lmgc_rows
    from sublora.lmgc.gradients import raw_bytes

    rows = []
    for net in ("convnet-seed0", "mlp-seed0"):
        raw = raw_bytes(dirs[net], HELD_OUT_STEP)
        for name, prior in priors.items():
            row = lmgc_rows(raw, prior, ["hex-space"], [4], window=WINDOW)[0]
            rows.append({"network": net, "prior": name, **row})
            print(f"headline {net} {name}: {row['rate']:.2f} % ({row['tokens_per_second']:.0f} tokens/s)", flush=True)
        rows += [{"network": net, "prior": None, **r} for r in baseline_rows(raw)]
    return rows


def _rate(row: dict) -> str:
    return f"{row['rate']:.2f}" if row.get("rate") is not None else row.get("status", "")


def markdown(results: dict) -> str:
    lines = ["## Priors", "", "| prior | data it saw | zero-shot | steps | training time | val bits/token |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, p in results["priors"].items():
        lines.append(f"| {name} | {p['data']} | {'yes' if p['zero_shot'] else 'no'} | {p['steps']} | "
                     f"{p['seconds'] / 60:.1f} min | {p['val_bits_per_token']:.3f} |")
    lines += ["", "## Headline: whole held-out checkpoints, hex-space / 4 bytes per group, window 256", "",
              "| network | method | rate % (whole) | rate % (per 512-byte chunk) |", "| --- | --- | --- | --- |"]
    for net in ("convnet-seed0", "mlp-seed0"):
        rows = [r for r in results["headline"] if r["network"] == net]
        for r in rows:
            if r["method"] == "lm-gc":
                lines.append(f"| {net} | LM-GC, {r['prior']} prior (ideal {r['ideal_rate']:.2f}) | {r['rate']:.2f} | "
                             f"(windows) |")
        for codec in dict.fromkeys(r["method"] for r in rows if r["method"] != "lm-gc"):
            by = {r["mode"]: r for r in rows if r["method"] == codec}
            lines.append(f"| {net} | {codec} | {_rate(by['whole'])} | {_rate(by['chunked'])} |")
        best = min((r for r in rows if r["method"] != "lm-gc" and r.get("rate") is not None), key=lambda r: r["rate"])
        for r in rows:
            if r["method"] == "lm-gc":
                margin = 100 * (best["rate"] - r["rate"]) / best["rate"]
                lines.append(f"| {net} | margin of LM-GC ({r['prior']}) over the best classical ({best['method']} "
                             f"{best['mode']}, {best['rate']:.2f}) | {margin:+.1f} % | |")
    lines += ["", f"## Ablation ({results['sample_bytes']:,}-byte sample of the held-out ConvNet checkpoint)", "",
              "| serialization / bytes per group | tokens per float | " +
              " | ".join(f"{p} rate %" for p in results["priors"]) + " |",
              "| --- | --- | " + " | ".join("---" for _ in results["priors"]) + " |"]
    combos = list(dict.fromkeys((r["serialization"], r["bytes_per_group"]) for r in results["ablation"]))
    for s, g in combos:
        cells = {r["prior"]: r for r in results["ablation"] if (r["serialization"], r["bytes_per_group"]) == (s, g)}
        any_row = next(iter(cells.values()))
        lines.append(f"| {s} / {'none' if g is None else g} | {any_row['tokens_per_float']:.2f} | " +
                     " | ".join(f"{cells[p]['rate']:.2f}" for p in results["priors"]) + " |")
    rt = results["round_trips"]
    lines += ["", "## Round trips (first + last 512-byte chunk of each network's step-250 gradients)", "",
              f"{sum(r['bit_exact'] for r in rt)} of {len(rt)} bit-exact: "
              + ", ".join(sorted({f"{r['network']}" for r in rt})) + " x " + ", ".join(SERIALIZATIONS)
              + " (zero-shot prior) and hex-space (numbers prior).", ""]
    enc = [r for r in results["headline"] if r["method"] == "lm-gc"]
    dec = [r["decode_tokens_per_second"] for r in rt]
    dmb = [r["decode_mb_per_hour"] for r in rt if r["serialization"] == "hex-space"]
    lines += ["## Speed (one thread, window 256)", "",
              "| | tokens/s | MB/hour |", "| --- | --- | --- |",
              (f"| encode (headline runs) | {min(r['tokens_per_second'] for r in enc):,.0f} - "
               f"{max(r['tokens_per_second'] for r in enc):,.0f} | {min(r['mb_per_hour'] for r in enc):.2f} - "
               f"{max(r['mb_per_hour'] for r in enc):.2f} |"),
              (f"| decode (round trips) | {min(dec):,.0f} - {max(dec):,.0f} | {min(dmb):.3f} - {max(dmb):.3f} "
               "(hex-space) |"),
              f"| the paper (GPU, 1-7 B priors) | | ~{PAPER_MB_PER_HOUR:.0f} (28 MB in 4 hours) |", "",
              f"Load average at the end: {results['loadavg']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lmgc-bench"))
    parser.add_argument("--steps", type=int, default=1500, help="training steps of each prior")
    parser.add_argument("--sample-kb", type=int, default=64)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from sublora.lmgc.bench import sample_chunks
    from sublora.lmgc.gradients import raw_bytes
    from sublora.lmgc.prior import load_prior

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    dirs = collect_all(work)
    corpus = numbers_corpus(work, dirs)
    runs = {"zero-shot": train_prior(work / "prior-zero-shot", {"source": "pystdlib"}, args.steps),
            "numbers": train_prior(work / "prior-numbers", {"source": "text", "source_options": {"path": str(corpus)}},
                                   args.steps)}
    priors = {name: load_prior(info["path"]) for name, info in runs.items()}
    results = {"priors": {name: {**info, "spec": priors[name].spec, "identity": priors[name].identity,
                                 "describe": priors[name].describe(), "zero_shot": priors[name].saw["zero_shot"],
                                 "data": ("Python standard library (embedded corpus)" if name == "zero-shot" else
                                          "hex-space text of ConvNet seeds 1-2 gradients")}
                          for name, info in runs.items()}}
    results["round_trips"] = round_trips(work, priors, dirs)
    sample, _ = sample_chunks(raw_bytes(dirs["convnet-seed0"], HELD_OUT_STEP), args.sample_kb * 1024)
    results["sample_bytes"] = len(sample)
    results["ablation"] = ablation(priors, sample)
    results["headline"] = headline(priors, dirs)
    results["loadavg"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results["environment"] = __import__("sublora.lmgc.container", fromlist=["environment"]).environment(1)
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (work / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
