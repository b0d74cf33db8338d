"""Which projector learns best per second: a fixed step budget on the embedded default corpus.

For every projector (and variant), d in {1e3, 1e4} and three seeds, train the
main job's model for --steps steps (one thread per run, --jobs runs at once)
and record the final train/val loss and the wall time. Writes a markdown table
to docs/projector_learning.md (and the raw rows as JSON next to it).

    .venv/bin/python benchmarks/projector_learning.py [--steps 300] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def read_run(out: Path, spec: str, d: int, seed: int) -> dict:
    row = {"projector": spec, "d": d, "seed": seed}
    manifest = json.loads((out / "manifest.json").read_text())
    if manifest.get("status") != "trained":
        return {**row, "error": f"status {manifest.get('status')}"}
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [e for e in evals if e["event"] == "eval"][-1]
    return {**row, "train_bpt": last["train_bpt"], "val_bpt": last["val_bpt"],
            "seconds": manifest["training"]["seconds"], "D": manifest["model"]["D"]}


def collect(work: Path) -> list[dict]:
    """Rows of every finished run in a work directory (to summarize an interrupted study)."""
    rows = []
    for out in sorted(p for p in work.iterdir() if (p / "manifest.json").is_file()):
        name, d, seed = out.name.rsplit("_", 2)
        rows.append(read_run(out, name.replace("-", ":", 1), int(d[1:]), int(seed[1:])))
    return rows


def run_one(spec: str, d: int, seed: int, steps: int, work: Path, env: dict) -> dict:
    out = work / f"{spec.replace(':', '-')}_d{d}_s{seed}"
    sublora = Path(sys.executable).with_name("sublora")
    cmd = [str(sublora), "train", "--out", str(out), "--projector", spec, f"--sublora.intrinsic_dim={d}",
           f"--sublora.seed={seed}", f"--train.seed={seed}", f"--model.init_seed={seed}",
           f"--train.max_steps={steps}", f"--train.eval_interval={steps}", f"--train.checkpoint_interval={steps}",
           f"--train.warmup_steps={max(1, steps // 20)}", "--train.threads=1", "--train.eval_batches=10"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"projector": spec, "d": d, "seed": seed, "error": (res.stderr.strip().splitlines() or ["?"])[-1]}
    return read_run(out, spec, d, seed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--d", default="1000,10000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--projectors", default=None)
    parser.add_argument("--collect", type=Path, default=None, help="only summarize the finished runs in this work dir")
    args = parser.parse_args()
    if args.collect:
        write_table(collect(args.collect), args)
        return
    from sublora.core.registry import registry

    specs = args.projectors.split(",") if args.projectors else registry("projector").specs()
    work = Path(tempfile.mkdtemp(prefix="sublora-learning-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SUBLORA_CACHE": os.environ.get("SUBLORA_CACHE", str(work / "cache"))}
    subprocess.run([str(Path(sys.executable).with_name("sublora")), "data", "prepare"], env=env, check=True,
                   capture_output=True)
    jobs = [(spec, int(float(d)), int(seed)) for spec in specs for d in args.d.split(",") for seed in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda j: run_one(*j, args.steps, work, env), jobs))
    for r in rows:
        print(json.dumps(r), flush=True)
    write_table(rows, args)


def write_table(rows: list[dict], args) -> None:
    lines = ["# Which projector learns best per second", "",
             f"`benchmarks/projector_learning.py --steps {args.steps}`: the main job's model on the embedded default "
             f"corpus, {args.steps} steps (batch 8 x 128 bytes), one thread per run, {args.jobs} runs at a time; "
             "mean +- std over seeds "
             f"{args.seeds}. Loss in bits per byte on fixed training batches after the last step; "
             "'gain/min' = bits per byte gained over the uniform-guess loss (8.006) per minute of training.", "",
             "| projector | d | train bits/byte | val bits/byte | seconds | gain/min |", "| --- | --- | --- | --- | --- | --- |"]
    keyed: dict[tuple, list] = {}
    for r in rows:
        keyed.setdefault((r["projector"], r["d"]), []).append(r)
    for (spec, d), rs in keyed.items():
        ok = [r for r in rs if "train_bpt" in r]
        if not ok:
            lines.append(f"| {spec} | {d} | error: {rs[0].get('error', '?')[:60]} | | | |")
            continue
        tr = [r["train_bpt"] for r in ok]
        va = [r["val_bpt"] for r in ok]
        sec = [r["seconds"] for r in ok]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        gain = statistics.mean((8.006 - t) / (s / 60) for t, s in zip(tr, sec))
        lines.append(f"| {spec} | {d} | {statistics.mean(tr):.3f} +- {sd(tr):.3f} | {statistics.mean(va):.3f} +- {sd(va):.3f} "
                     f"| {statistics.mean(sec):.1f} | {gain:.2f} |")
    (ROOT / "docs" / "projector_learning.md").write_text("\n".join(lines) + "\n")
    (ROOT / "docs" / "projector_learning.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
