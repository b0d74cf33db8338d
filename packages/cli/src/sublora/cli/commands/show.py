"""`sublora show RUN_DIR`: one run's config, training summary, compression and bounds."""

from __future__ import annotations

import json

from sublora.cli.console import out
from sublora.cli.options import RunDirArg


def show(run_dir: RunDirArg) -> None:
    """Print a run's config, training curve summary, compression and bounds (reads files only)."""
    from sublora.cli.report import print_certificate
    from sublora.core.rundir import RunDir

    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    cfg = manifest["config"]
    out.print(f"[bold]{run_dir}[/]  status: {manifest.get('status')}  created: {manifest.get('created')}")
    out.print(f"model: {cfg['model']['preset']} {manifest.get('model', {})}  projector: {cfg['sublora']['projector']} "
              f"d={cfg['sublora']['intrinsic_dim']}", highlight=False)
    out.print(f"data: {cfg['data']['source']} / {cfg['data']['tokenizer']}", highlight=False)
    if rd.metrics.is_file():
        evals = [e for e in map(json.loads, rd.metrics.read_text().splitlines()) if e.get("event") == "eval"]
        if evals:
            first, last = evals[0], evals[-1]
            best = min(evals, key=lambda e: e["val_bpt"])
            out.print(f"training: {len(evals)} evals; val bits/token {first['val_bpt']:.4f} (step {first['step']}) -> "
                      f"{last['val_bpt']:.4f} (step {last['step']}); best {best['val_bpt']:.4f} at step {best['step']}",
                      highlight=False)
    report = manifest.get("projector_report")
    if report:
        out.print(f"projector state (end of training): {json.dumps(report)}", highlight=False)
    if rd.certificate.is_file():
        cert = json.loads(rd.certificate.read_text())
        if cert.get("projector_report"):
            out.print(f"projector state (certified, quantized): {json.dumps(cert['projector_report'])}", highlight=False)
        print_certificate(cert)
    else:
        out.print("no certificate yet (run `sublora bound`).")
