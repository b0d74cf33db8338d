"""`sublora show RUN_DIR`: one run's config, training summary, compression and bounds."""

from __future__ import annotations

import json

from rich.markup import escape

from sublora.cli.console import out
from sublora.cli.options import RunDirArg


def show(run_dir: RunDirArg) -> None:
    """Print a run's config, training curve summary, compression and bounds (reads files only)."""
    from sublora.cli.report import print_certificate
    from sublora.core.errors import RunDirError
    from sublora.core.rundir import RunDir

    rd = RunDir(run_dir)
    manifest = rd.read_manifest()
    if manifest.get("kind") == "finetune": return __import__("sublora.cli.commands.finetune", fromlist=["x"]).show_finetune(rd, manifest)  # issue 13.1
    cfg = manifest.get("config")
    if not isinstance(cfg, dict):
        raise RunDirError(f"{rd.manifest} holds no config.", hint="It was not written by sublora, or was edited.")
    out.print(f"[bold]{escape(str(run_dir))}[/]  status: {escape(str(manifest.get('status')))}  "
              f"created: {escape(str(manifest.get('created')))}")
    out.print(f"model: {cfg['model']['preset']} {manifest.get('model', {})}  projector: {cfg['sublora']['projector']} "
              f"d={cfg['sublora']['intrinsic_dim']}", highlight=False)
    out.print(f"data: {cfg['data']['source']} / {cfg['data']['tokenizer']}", highlight=False)
    if rd.metrics.is_file():
        events, unreadable = _events(rd.metrics.read_text(errors="replace"))
        if unreadable:  # e.g. a last line cut by a crash; a resume cuts it back itself
            out.print(f"[dim]({unreadable} unreadable line(s) of {rd.metrics.name} skipped)[/]", highlight=False)
        evals = [e for e in events if e.get("event") == "eval" and isinstance(e.get("val_bpt"), (int, float))]
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
        try:
            cert = json.loads(rd.certificate.read_text())
        except ValueError as exc:
            raise RunDirError(f"{rd.certificate} is not valid JSON: {exc}.",
                              hint=f"Recompute it: `sublora bound {run_dir} --force`.") from exc
        if not isinstance(cert, dict) or not isinstance(cert.get("bounds"), list):
            raise RunDirError(f"{rd.certificate} is not a sublora certificate.",
                              hint=f"Recompute it: `sublora bound {run_dir} --force`.")
        out.print(f"[dim]the certificate as written; `sublora verify {escape(str(run_dir))}` recomputes and checks it[/]",
                  highlight=False)
        if cert.get("projector_report"):
            out.print(f"projector state (certified, quantized): {json.dumps(cert['projector_report'])}", highlight=False)
        print_certificate(cert)
    else:
        out.print("no certificate yet (run `sublora bound`).")


def _events(text: str) -> tuple[list[dict], int]:
    """The JSON objects of a metrics.jsonl, and how many lines were not one."""
    events, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(event, dict):
            events.append(event)
        else:
            bad += 1
    return events, bad
