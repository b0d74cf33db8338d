"""`sublora finetune`: a classifier on a GPT-2 in a LoRA subspace, its accuracy and its error bound."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from sublora.cli.console import err, out
from sublora.cli.options import FinetuneConfigFile, FormatOpt, OutDir, ProjectorOpt

TaskOpt = Annotated[str | None, typer.Option(
    "--task", help="stdlib-packages (offline default), csv:PATH, jsonl:PATH, hf:NAME, glue:cola, glue:qqp; "
    "options as --task.options.FIELD=VALUE (docs/finetune.md).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="A GPT-2 preset (random init: tiny, mini, ...), a local pretrained directory, or a sublora run.")]


def finetune(ctx: typer.Context, out_dir: OutDir, task: TaskOpt = None, model: ModelOpt = None,
             config_file: FinetuneConfigFile = None, projector: ProjectorOpt = None, fmt: FormatOpt = "table") -> None:
    """Finetune a sequence classifier in a LoRA subspace, compress w, bound its error over the training examples.

    Sections: task, model, lora, sublora, train, bound; any field as --section.field=value, e.g.
    --sublora.intrinsic_dim=1000 --train.max_steps=400. Check the result with `sublora verify OUT`.
    """
    from sublora.core.finetune.config import FinetuneConfig
    from sublora.core.overrides import apply_overrides, load_yaml, parse_overrides

    overrides = parse_overrides(list(ctx.args))
    for key, value in (("task.spec", task), ("model.base", model), ("sublora.projector", projector)):
        if value is not None:
            overrides[key] = value
    config = FinetuneConfig.from_dict(apply_overrides(load_yaml(config_file) if config_file else {}, overrides))
    from sublora.bounds.classification import finetune as finetune_fn  # torch: after the config is known to be valid

    def on_step(step: int, event: dict[str, Any]) -> None:
        if event["event"] == "eval":
            err.print(f"step {step}/{config.train.max_steps}: loss {event['loss']:.4f}, accuracy train "
                      f"{event['train_accuracy']:.3f} val {event['val_accuracy']:.3f} ({event['elapsed']:.0f} s)",
                      highlight=False)

    cert = finetune_fn(config, out_dir, on_step=on_step)
    if fmt == "json":
        typer.echo(json.dumps({k: cert[k] for k in ("accuracy", "random_guess", "headline", "bounds")}, indent=2))
        return
    print_classification(cert)
    out.print(f"wrote {out_dir / 'certificate.json'}; check it with `sublora verify {out_dir}`", highlight=False)


def print_classification(cert: dict[str, Any]) -> None:
    """Accuracy, the bounds on the error and the random-guess errors they are judged against."""
    from rich.table import Table

    guess, acc = cert["random_guess"], cert["accuracy"]
    task = cert["task"]
    out.print(f"task {task['name']}: {len(task['classes'])} classes, N = {task['N_train']:,} training / "
              f"{task['N_val']:,} validation examples", highlight=False)
    q, u = acc["quantized"], acc["unquantized"] or {}
    out.print(f"accuracy: validation {q['val']:.4f} (unquantized {u.get('val', float('nan')):.4f}), training "
              f"{q['train']:.4f}", highlight=False)
    delta = cert["searches"]["attempts"]["delta_per_attempt"]
    table = Table(title=f"Error bounds (each holds with probability >= {1 - delta:.3g})", title_justify="left")
    for col in ("bound", "estimator", "empirical", "bound value", "majority-class error", "status"):
        table.add_column(col, justify="left" if col in ("bound", "estimator", "status") else "right")
    for b in cert["bounds"]:
        if b["units"] != "error rate":
            continue
        ok = b["value"] < guess["majority_error"]
        table.add_row(b["name"], b["estimator"], f"{100 * b['empirical']:.2f} %", f"{100 * b['value']:.2f} %",
                      f"{100 * guess['majority_error']:.2f} %", "[green]non-vacuous[/]" if ok else "[red]VACUOUS[/]")
    out.print(table)
    head = cert["headline"]
    if head.get("value") is not None:
        out.print(f"headline: classification error <= [bold]{100 * head['value']:.2f} %[/] ({head['name']}); "
                  f"majority class {100 * guess['majority_error']:.2f} %, uniform guess {100 * guess['uniform_error']:.2f} %",
                  highlight=False)
    else:
        out.print(f"headline: none ({head.get('note')})", highlight=False)
    out.print(f"model: d={cert['d']:,} in D={cert['D']:,} (LoRA + head); {cert['compressed_file']} = "
              f"{cert['code_bits']:,} bits, {cert['total_bits']:,.1f} bits charged", highlight=False)


def show_finetune(rd, manifest: dict[str, Any]) -> None:
    """`sublora show` of a finetuning run: its config summary, training and certificate (reads files only)."""
    cfg = manifest["config"]
    out.print(f"[bold]{rd.root}[/]  finetuning run  status: {manifest.get('status')}  created: {manifest.get('created')}")
    out.print(f"task: {cfg['task']['spec']}  base: {manifest.get('base')}  projector: {cfg['sublora']['projector']} "
              f"d={cfg['sublora']['intrinsic_dim']}", highlight=False)
    training = manifest.get("training")
    if training:
        out.print(f"training: {training['steps']} steps in {training['seconds']} s, final loss {training['final_loss']:.4f}",
                  highlight=False)
    if rd.certificate.is_file():
        print_classification(json.loads(rd.certificate.read_text()))
    else:
        out.print("no certificate (the run stopped before `sublora finetune` bounded it).")
