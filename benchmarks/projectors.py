"""Projector forward + backward time and peak memory over D x d, for every registered projector.

Each (projector, D, d) runs in its own subprocess (one thread), so peak RSS is
that projector's own: the table reports the growth of the process's peak RSS
over its baseline after importing torch (building P + forward + backward).

    .venv/bin/python benchmarks/projectors.py                    # all projectors, full grid
    .venv/bin/python benchmarks/projectors.py --projectors rdkron:qr,fastfood --D 1e5,1e6 --d 1e3

A spec may carry options after '@' (``nola@matrix=fastfood``); by default the
registered specs are followed by the large-layout options of film and nola
(``--extra``).

Target (issue 3): every projector other than dense handles D = 1e7 within 2 GB.
Dense is skipped where D * d > --dense-limit (it is O(D d) compute per call).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, resource, statistics, sys, time
import torch
torch.set_num_threads(1)
from sublora.core.registry import registry
from sublora.core.testing import make_layout
spec, D, d = sys.argv[1], int(float(sys.argv[2])), int(float(sys.argv[3]))
spec, _, opts = spec.partition("@")
options = dict(kv.split("=", 1) for kv in opts.split(";")) if opts else {}
layout = make_layout(D)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
proj = registry("projector").config(spec, options).build(layout, d, 0)
build = time.perf_counter() - t0
w = torch.randn(d, requires_grad=True)
g = torch.randn(layout.D)
times = []
for i in range(4):
    t = time.perf_counter()
    out = proj(w)
    (out * g).sum().backward()
    w.grad = None
    times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stored = sum(b.numel() for b in proj.buffers()) + sum(p.numel() for p in proj.parameters())
print(json.dumps({"build_s": build, "fwd_bwd_s": statistics.median(times[1:]), "peak_mb": (peak - base) / 1024,
                  "stored": stored}))
"""


def parse_list(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--projectors", default=None, help="comma-separated specs (default: every registered one)")
    parser.add_argument("--extra", default="film@matrix=fastfood,film:rdkron@matrix=fastfood,nola@matrix=fastfood",
                        help="specs with options run after the registered ones ('' for none)")
    parser.add_argument("--D", default="1e5,1e6,1e7")
    parser.add_argument("--d", default="1e3,1e4,5e4")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--dense-limit", type=float, default=2e9)
    args = parser.parse_args()
    from sublora.core.registry import registry

    specs = args.projectors.split(",") if args.projectors else registry("projector").specs()
    if not args.projectors and args.extra:
        specs += args.extra.split(",")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"{'projector':28s} {'D':>9s} {'d':>7s} {'build [s]':>10s} {'fwd+bwd [s]':>12s} {'peak [MB]':>10s} "
          f"{'stored/(D*d)':>13s}  note")
    for spec in specs:
        for D in parse_list(args.D):
            for d in parse_list(args.d):
                if spec.startswith("dense") and D * d > args.dense_limit:
                    print(f"{spec:28s} {D:9d} {d:7d} {'':>10s} {'':>12s} {'':>10s} {'':>13s}  skipped: D*d > {args.dense_limit:g}")
                    continue
                try:
                    res = subprocess.run([sys.executable, "-c", WORKER, spec, str(D), str(d)], capture_output=True,
                                         text=True, env=env, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    print(f"{spec:28s} {D:9d} {d:7d} {'':>10s} {'':>12s} {'':>10s} {'':>13s}  timeout > {args.timeout:g}s")
                    continue
                if res.returncode != 0:
                    last = (res.stderr.strip().splitlines() or ["?"])[-1][:70]
                    print(f"{spec:28s} {D:9d} {d:7d} {'':>10s} {'':>12s} {'':>10s} {'':>13s}  error: {last}")
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                note = "over 2 GB" if r["peak_mb"] > 2048 else ""
                print(f"{spec:28s} {D:9d} {d:7d} {r['build_s']:10.3f} {r['fwd_bwd_s']:12.4f} {r['peak_mb']:10.1f} "
                      f"{r['stored'] / (D * d):13.2e}  {note}", flush=True)


if __name__ == "__main__":
    main()
