"""The main job against its targets: wall time, peak memory, and the token-level bound.

Runs `sublora run` (default preset unless --preset) in a fresh run directory
and a fresh data cache, then prints one table:

    .venv/bin/python benchmarks/main_job.py [--preset smoke] [--out /tmp/main-bench]

Targets (issue 2): default preset <= 15 min wall, < 4 GB peak RSS, token-level
bound < 6 bits/byte (random guess: 8); smoke preset < 2 min.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="default")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="extra --section.field=value overrides")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sublora-bench-"))
    out = args.out or work / "run"
    if out.exists():
        shutil.rmtree(out)
    env = {**os.environ, "SUBLORA_CACHE": str(work / "cache")}
    sublora = Path(sys.executable).with_name("sublora")
    cmd = [str(sublora), "run", "--preset", args.preset, "--out", str(out), *args.overrides]
    t0 = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit(f"sublora run failed with exit code {result.returncode}")
    cert = json.loads((out / "certificate.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    limit = 15 * 60 if args.preset == "default" else 120
    rows = [
        ("wall time [s]", f"{wall:.1f}", f"<= {limit}", wall <= limit),
        ("peak RSS [MB]", f"{peak_mb:.0f}", "< 4096", peak_mb < 4096),
        ("training [s]", f"{manifest['training']['seconds']:.1f}", "", None),
        ("bound + verify [s]", f"{cert['seconds']:.1f}", "", None),
        ("code bits (model.slc)", f"{cert['code_bits']}", "", None),
    ]
    for b in cert["bounds"]:
        target = "< 6" if b["name"].startswith("token") else ""
        ok = b["value"] < 6 if target else None
        rows.append((f"{b['name']} ({b['units']})", f"{b['value']:.4f} (emp {b['empirical']:.4f}, random {b['random_guess']:.3f})",
                     target, ok))
    print(f"{'measure':34s} {'value':48s} {'target':10s} ok")
    for name, value, target, ok in rows:
        print(f"{name:34s} {value:48s} {target:10s} {'' if ok is None else ('yes' if ok else 'NO')}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
