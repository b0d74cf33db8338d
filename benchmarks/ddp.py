"""DDP training throughput: 2 processes of one run vs 2 independent single-thread runs (the ideal).

Both sides run through the CLI, 1 torch thread per process, at the same time on the machine:
  - ddp:   `sublora train --nproc 2` with train.grad_accum = 2 (one micro-batch per rank per step);
  - ideal: two `sublora train` processes side by side, grad_accum = 1 each (no communication at all).
Per-sample throughput is samples per second over steps [warmup, steps], read from each run's metrics
(`elapsed` of its train lines, so start-up and evaluation are not counted). Reports the ratio
ideal / ddp (target <= 1.2) and the bytes all-reduced per step from the DDP run's manifest
(expected 4 x (d + projector-owned numbers + 1): w's gradient and the step's loss). Rounds interleave;
medians.

    .venv/bin/python benchmarks/ddp.py [--rounds 3] [--steps 40] [--d 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def overrides(args, accum: int) -> list[str]:
    return ["--preset", "smoke", "--device", "cpu", "--model.preset=mini", f"--model.block_size={args.block}",
            f"--sublora.intrinsic_dim={args.d}", f"--sublora.projector={args.projector}",
            f"--train.batch_size={args.batch}", f"--train.grad_accum={accum}", f"--train.max_steps={args.steps}",
            "--train.threads=1", "--train.log_interval=1", f"--train.eval_interval={args.steps}",
            f"--train.checkpoint_interval={args.steps}", "--train.eval_batches=1"]


def throughput(run: Path, samples_per_step: int, warmup: int) -> float:
    """Samples per second between the train lines of step ``warmup`` and of the last step."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = {e["step"]: e["elapsed"] for e in lines if e["event"] == "train"}
    last = max(train)
    return (last - warmup) * samples_per_step / (train[last] - train[warmup])


def cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sublora.cli", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"a run failed:\n{err}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--d", type=int, default=4000)
    ap.add_argument("--projector", default="rdkron:qr")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--block", type=int, default=128)
    args = ap.parse_args()

    ddp, ideal, nbytes = [], [], None
    with tempfile.TemporaryDirectory(prefix="sublora-ddp-bench-") as tmp:
        for r in range(args.rounds):
            out = Path(tmp, f"ddp{r}")
            wait(cli("--out", str(out), "--nproc", "2", *overrides(args, 2)))
            ddp.append(throughput(out, 2 * args.batch, args.warmup))
            nbytes = json.loads((out / "manifest.json").read_text())["allreduce"]["bytes_per_step"]
            a, b = Path(tmp, f"a{r}"), Path(tmp, f"b{r}")
            pa, pb = cli("--out", str(a), *overrides(args, 1)), cli("--out", str(b), "--train.seed=1", *overrides(args, 1))
            wait(pa, pb)
            ideal.append(throughput(a, args.batch, args.warmup) + throughput(b, args.batch, args.warmup))
            print(f"round {r + 1}: ddp {ddp[-1]:.1f} samples/s, 2 independent {ideal[-1]:.1f} samples/s", flush=True)
    d, i = statistics.median(ddp), statistics.median(ideal)
    print()
    print(f"| setting (mini GPT-2, block {args.block}, batch {args.batch}/rank, d = {args.d}, {args.projector}, "
          f"1 thread/process) | samples/s (median of {args.rounds}) |")
    print("| --- | ---: |")
    print(f"| 2 independent single-thread processes (ideal) | {i:.1f} |")
    print(f"| 2-process DDP (`sublora train --nproc 2`, gloo) | {d:.1f} |")
    print(f"| ideal / DDP (target <= 1.2) | {i / d:.3f} |")
    print(f"| bytes all-reduced per step (4 x (d + 1)) | {nbytes} (= 4 x {nbytes // 4}) |")


if __name__ == "__main__":
    main()
