"""A neural parameter prior (issue 11 item 6a): `sublora train` on serialized gradients of other runs,
against the zero-shot prior and the classical codecs, on held-out runs.

    .venv/bin/python benchmarks/lmgc_param_prior.py [--work /tmp/lmgc-param-prior] [--steps 2000]
        [--reuse-grads /tmp/lmgc-bench/grads] [--zero-shot /tmp/lmgc-bench/prior-zero-shot] [--sample-kb 64]

1. Gradients (`sublora lmgc collect`, defaults: 500 steps, every 50, final weights) of the digits
   ConvNet with seeds 0-5 (and the MLP with seed 0). Seeds 1-4 train the prior; 0 and 5 (and the
   MLP) are held out: the prior never sees their bytes. --reuse-grads links identical collections.
2. The parameter prior: `sublora train` on the `lmgc:all` source (every gradient checkpoint and the
   final weights of seeds 1-4, hex-space/4, one document per 512-byte chunk, at most --max-chunks
   evenly spaced chunks per checkpoint), the same architecture and budget as the zero-shot prior
   (GPT-2 mini 4 x 128, context 256, LoRA r 16 everywhere, d = 20,000, --steps steps, one thread).
   The zero-shot prior is the same recipe on the embedded corpus (--zero-shot reuses such a run).
3. Rates on held-out checkpoints (gradients at steps 50, 250, 500 and the final weights): a
   --sample-kb sample of evenly spaced 512-byte chunks, coded by both priors (hex-space/4, window
   256) and compressed by every classical codec on the same bytes.
4. One bit-exact round trip with the parameter prior (`decompress_file`, sha256 checked).

Writes WORK/results.json and WORK/results.md (the tables of docs/lmgc.md, "A neural parameter prior").
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from lmgc import WINDOW, train_prior  # benchmarks/lmgc.py: the same prior recipe and window

TRAIN_SEEDS = (1, 2, 3, 4)
HELD_OUT = ("convnet-seed0", "convnet-seed5", "mlp-seed0")
CHECKPOINTS = (50, 250, 500, "weights")


def collect_all(work: Path, reuse: Path | None) -> dict[str, Path]:
    from sublora.lmgc.collect import collect, make_config

    dirs = {}
    for network, seed in [("convnet", s) for s in (0, 5, *TRAIN_SEEDS)] + [("mlp", 0)]:
        name = f"{network}-seed{seed}"
        out = work / "grads" / name
        config = make_config(network=network, seed=seed)
        done = (out / "index.json").is_file() and json.loads((out / "index.json").read_text()).get("weights")
        if not done and reuse is not None and (reuse / name / "index.json").is_file():
            index = json.loads((reuse / name / "index.json").read_text())
            if index.get("weights") and index["source"].get("config") == config.model_dump():
                out.parent.mkdir(parents=True, exist_ok=True)
                if out.is_symlink() or out.exists():
                    out.unlink()
                out.symlink_to(reuse / name)
                done = True
        if not done:
            t0 = time.perf_counter()
            collect(config, out, force=True, command="benchmarks/lmgc_param_prior.py")
            print(f"collected {out} in {time.perf_counter() - t0:.0f} s", flush=True)
        dirs[name] = out
    return dirs


def rates(priors: dict, dirs: dict[str, Path], sample_kb: int) -> list[dict]:
    from sublora.lmgc.bench import baseline_rows, best_baseline, lmgc_rows, sample_chunks
    from sublora.lmgc.gradients import raw_bytes

    rows = []
    for name in HELD_OUT:
        for checkpoint in CHECKPOINTS:
            raw, info = sample_chunks(raw_bytes(dirs[name], checkpoint), sample_kb * 1024)
            row = {"run": name, "checkpoint": checkpoint, "bytes": len(raw), "of_bytes": info.get("of_bytes", len(raw))}
            for prior_name, prior in priors.items():
                r = lmgc_rows(raw, prior, ["hex-space"], [4], window=WINDOW)[0]
                row[prior_name] = {k: r[k] for k in ("rate", "ideal_rate", "tokens", "seconds", "tokens_per_second")}
            baselines = baseline_rows(raw)
            best = best_baseline(baselines)
            row["baselines"] = {f"{b['method']}/{b['mode']}": b["rate"] for b in baselines}
            row["best"] = {"codec": f"{best['method']} ({best['mode']})", "rate": best["rate"]}
            rows.append(row)
            print(f"{name} {checkpoint}: " + ", ".join(f"{p} {row[p]['rate']:.2f}" for p in priors)
                  + f", best classical {row['best']['codec']} {best['rate']:.2f}", flush=True)
    return rows


def round_trip(work: Path, prior, dirs: dict[str, Path]) -> dict:
    from sublora.lmgc.bench import sample_chunks
    from sublora.lmgc.codec import CodecSettings
    from sublora.lmgc.files import compress_file, decompress_file
    from sublora.lmgc.gradients import raw_bytes

    raw, _ = sample_chunks(raw_bytes(dirs["convnet-seed0"], 250), 512)
    src, packed, back = work / "rt.f32", work / "rt.lmgc", work / "rt.out"
    src.write_bytes(raw)
    enc = compress_file(src, packed, prior, CodecSettings(window=WINDOW), force=True)
    dec = decompress_file(packed, back, prior, force=True)
    return {"bytes": len(raw), "bit_exact": back.read_bytes() == raw, "rate": enc["rate"],
            "encode_seconds": enc["encode_seconds"], "decode_seconds": dec["decode_seconds"]}


def markdown(results: dict) -> str:
    priors = list(results["priors"])
    lines = ["| prior | data it saw | training tokens | steps | time | val bits/token |", "| --- | --- | --- | --- | --- | --- |"]
    for name, p in results["priors"].items():
        lines.append(f"| {name} | {p['data']} | {p['train_tokens']:,} | {p['steps']} | {p['seconds'] / 60:.1f} min | "
                     f"{p['val_bits_per_token']:.3f} |")
    best_prior = results["round_trip"]["prior"]
    lines += ["", f"Rate % (lower is better) on a {results['sample_kb']} KB sample (evenly spaced 512-byte chunks) of "
              "each held-out checkpoint; LM-GC at hex-space / 4 bytes per group, window 256:", "",
              "| held-out run | checkpoint | " + " | ".join(f"LM-GC, {p} prior" for p in priors)
              + f" | best classical (same bytes) | {best_prior} vs zero-shot | {best_prior} vs best classical |",
              "| --- | --- | " + " | ".join("---" for _ in priors) + " | --- | --- | --- |"]
    for r in results["rates"]:
        z, n, b = r["zero-shot"]["rate"], r[best_prior]["rate"], r["best"]["rate"]
        lines.append(f"| {r['run']} | {r['checkpoint']} | " + " | ".join(f"{r[p]['rate']:.2f}" for p in priors)
                     + f" | {b:.2f} ({r['best']['codec']}) | {100 * (n - z) / z:+.1f} % | {100 * (n - b) / b:+.1f} % |")
    rt = results["round_trip"]
    lines += ["", f"Round trip with the {rt['prior']} prior ({rt['bytes']} bytes of convnet-seed0 step 250): "
              f"{'bit-exact' if rt['bit_exact'] else 'MISMATCH'}, rate {rt['rate']:.2f} %, encode "
              f"{rt['encode_seconds']:.1f} s, decode {rt['decode_seconds']:.1f} s.",
              f"Load average at the end: {results['loadavg']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/lmgc-param-prior"))
    parser.add_argument("--steps", type=int, default=2000, help="training steps of each prior")
    parser.add_argument("--sample-kb", type=int, default=64)
    parser.add_argument("--max-chunks", type=int, default=400, help="chunks per checkpoint in the prior's corpus")
    parser.add_argument("--reuse-grads", type=Path, default=None, help="link identical collections from this folder")
    parser.add_argument("--zero-shot", type=Path, default=None, help="an existing zero-shot prior run (same recipe)")
    parser.add_argument("--documents", default="chunk,checkpoint", help="the lmgc source's `document` option: one "
                        "parameter prior per value")
    parser.add_argument("--extra-prior", action="append", help="NAME=RUN: another trained prior to measure too")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from sublora.lmgc.prior import load_prior

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    dirs = collect_all(work, args.reuse_grads)
    train_dirs = [str(dirs[f"convnet-seed{s}"].resolve()) for s in TRAIN_SEEDS]
    runs = {"zero-shot": train_prior(args.zero_shot or work / "prior-zero-shot", {"source": "pystdlib"}, args.steps)}
    data = {"zero-shot": "the Python standard library (embedded corpus)"}
    for document in args.documents.split(","):
        name = "parameter" if document == "chunk" else f"parameter ({document})"
        runs[name] = train_prior(work / ("prior-parameter" if document == "chunk" else f"prior-parameter-{document}"),
                                 {"source": "lmgc:all", "source_options": {"paths": train_dirs, "document": document,
                                                                           "max_chunks": args.max_chunks}},
                                 args.steps)
        data[name] = (f"`lmgc:all`, one document per {document}: hex-space/4 text of ConvNet seeds "
                      f"{', '.join(map(str, TRAIN_SEEDS))}, 10 gradient checkpoints + final weights each, "
                      f"{args.max_chunks} chunks per checkpoint")
    for item in args.extra_prior or []:
        name, _, path = item.partition("=")
        runs[name] = {"path": path, **{k: v for k, v in train_prior(Path(path), {}, 0).items() if k != "path"}}
        data[name] = f"see its describe(): {path}"
    priors = {name: load_prior(info["path"]) for name, info in runs.items()}
    results = {"priors": {name: {**info, "identity": priors[name].identity, "describe": priors[name].describe(),
                                 "zero_shot": priors[name].saw["zero_shot"], "data": data[name]}
                          for name, info in runs.items()},
               "sample_kb": args.sample_kb}
    results["rates"] = rates(priors, dirs, args.sample_kb)
    best = min((n for n in priors if n != "zero-shot"), key=lambda n: sum(r[n]["rate"] for r in results["rates"]))
    results["round_trip"] = {"prior": best, **round_trip(work, priors[best], dirs)}
    results["loadavg"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (work / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
