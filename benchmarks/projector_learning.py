"""Which projector learns best per second: a fixed step budget on the embedded default corpus.

For every projector (and variant), d in {1e3, 1e4} and three seeds, train the
main job's model for --steps steps (one thread per run, --jobs runs at once)
and record the final train/val loss. The loss after a fixed number of steps
does not depend on how busy the machine is; the wall time of a run does. So
the time per step is measured separately, after all runs, with every
projector's training step interleaved in one process (one thread, median after
a warm-up, as benchmarks/train_step.py), and "per second" uses that.
Writes a markdown table to docs/projector_learning.md (raw rows as JSON next to it).

    .venv/bin/python benchmarks/projector_learning.py [--steps 1000] [--jobs 2]
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
#: projector options used here: dense keeps its 389 MB matrix at d = 1e4 (default cache 256 MB: regenerated
#: every step, ~25x slower), as anyone training dense at that size would set
OPTIONS = {"dense": {"cache_mb": 1024}}


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


def step_times(specs: list[str], ds: list[int], repeats: int) -> dict[tuple[str, int], float]:
    """Median seconds per training step of the main job's model, one thread, projectors interleaved per d."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_step import make_config, measure, subspace_step_fn

    from sublora.core.config import RunConfig

    torch.set_num_threads(1)
    default = RunConfig()
    model = {"preset": default.model.preset, "block_size": default.model.block_size}
    out = {}
    for d in ds:
        fns = {}
        for spec in specs:
            try:
                config = make_config(model, d, spec, 1)
                config.sublora.projector_options.update(OPTIONS.get(spec, {}))
                fns[spec] = subspace_step_fn(config, default.train.batch_size, default.model.block_size)[0]
            except Exception as exc:  # noqa: BLE001 - a projector that cannot build here has no step time
                print(f"step time: {spec} at d={d}: {type(exc).__name__}: {exc}", file=sys.stderr)
        out.update({(spec, d): t for spec, t in measure(fns, repeats).items()})
    return out


def run_one(spec: str, d: int, seed: int, steps: int, work: Path, env: dict) -> dict:
    out = work / f"{spec.replace(':', '-')}_d{d}_s{seed}"
    if (out / "manifest.json").is_file() and json.loads((out / "manifest.json").read_text()).get("status") == "trained":
        return read_run(out, spec, d, seed)  # finished in an earlier, interrupted study
    sublora = Path(sys.executable).with_name("sublora")
    cmd = [str(sublora), "train", "--out", str(out), "--projector", spec, f"--sublora.intrinsic_dim={d}",
           f"--sublora.seed={seed}", f"--train.seed={seed}", f"--model.init_seed={seed}",
           f"--train.max_steps={steps}", f"--train.eval_interval={steps}", f"--train.checkpoint_interval={steps}",
           f"--train.warmup_steps={max(1, steps // 20)}", "--train.threads=1", "--train.eval_batches=10"]
    if spec in OPTIONS:
        cmd.append(f"--sublora.projector_options={json.dumps(OPTIONS[spec])}")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        return {"projector": spec, "d": d, "seed": seed, "error": (res.stderr.strip().splitlines() or ["?"])[0]}
    return read_run(out, spec, d, seed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved step-time measurements per projector")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--d", default="1000,10000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--projectors", default=None)
    parser.add_argument("--collect", type=Path, default=None, help="only summarize the finished runs in this work dir")
    parser.add_argument("--work", type=Path, default=None, help="work dir (reuse one to resume an interrupted study)")
    args = parser.parse_args()
    from sublora.core.registry import registry

    specs = args.projectors.split(",") if args.projectors else registry("projector").specs()
    ds = [int(float(d)) for d in args.d.split(",")]
    if args.collect:
        rows = collect(args.collect)
        write_table(rows, step_times(sorted({r["projector"] for r in rows}), ds, args.repeats), args)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="sublora-learning-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SUBLORA_CACHE": os.environ.get("SUBLORA_CACHE", str(work / "cache"))}
    subprocess.run([str(Path(sys.executable).with_name("sublora")), "data", "prepare"], env=env, check=True,
                   capture_output=True)
    jobs = [(spec, d, int(seed)) for spec in specs for d in ds for seed in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda j: run_one(*j, args.steps, work, env), jobs))
    for r in rows:
        print(json.dumps(r), flush=True)
    write_table(rows, step_times(specs, ds, args.repeats), args)


def write_table(rows: list[dict], steps_s: dict[tuple[str, int], float], args) -> None:
    lines = ["# Which projector learns best per second", "",
             f"`benchmarks/projector_learning.py --steps {args.steps}`: the main job's model on the embedded default "
             f"corpus, {args.steps} steps (batch 8 x 128 bytes, lr and schedule of the main job), one thread per run; "
             f"mean +- std over seeds {args.seeds}. Loss in bits per byte on fixed training batches after the last "
             "step. 'step' = median time of one training step with that projector, measured after all runs with "
             f"every projector interleaved in one process (one thread, {args.repeats} rounds after a warm-up); "
             f"'time' = {args.steps} x step; 'gain/min' = bits per byte gained over the uniform guess (8.006) per "
             "minute of that time. 'wall' = the runs' own mean wall time (they shared the machine: indicative only). "
             f"Options: {json.dumps(OPTIONS)}.",
             "", "| projector | d | train bits/byte | val bits/byte | step [ms] | time [s] | gain/min | wall [s] |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    keyed: dict[tuple, list] = {}
    for r in rows:
        keyed.setdefault((r["projector"], r["d"]), []).append(r)
    for (spec, d), rs in keyed.items():
        ok = [r for r in rs if "train_bpt" in r]
        if not ok:
            lines.append(f"| {spec} | {d} | error: {rs[0].get('error', '?')[:90]} | | | | | |")
            continue
        tr = [r["train_bpt"] for r in ok]
        va = [r["val_bpt"] for r in ok]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        step = steps_s.get((spec, d))
        time_s = step * args.steps if step else None
        gain = f"{(8.006 - statistics.mean(tr)) / (time_s / 60):.2f}" if time_s else "?"
        lines.append(f"| {spec} | {d} | {statistics.mean(tr):.3f} +- {sd(tr):.3f} | {statistics.mean(va):.3f} +- "
                     f"{sd(va):.3f} | {step * 1e3 if step else float('nan'):.1f} | "
                     f"{time_s or float('nan'):.1f} | {gain} | {statistics.mean(r['seconds'] for r in ok):.1f} |")
    (ROOT / "docs" / "projector_learning.md").write_text("\n".join(lines) + "\n")
    raw = {"rows": rows, "step_seconds": [{"projector": k[0], "d": k[1], "step_s": v} for k, v in steps_s.items()]}
    (ROOT / "docs" / "projector_learning.json").write_text(json.dumps(raw, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
