"""Rich progress displays for the long stages (data, training, scoring)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sublora.cli.console import err


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=False,
    )


@contextmanager
def task_bar(description: str):
    """Yield a ``progress(done, total)`` callback drawing one bar."""
    with _progress() as progress:
        task = progress.add_task(description, total=None, info="")

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


class TrainingProgress:
    """Implements sublora.core.train.TrainCallbacks with a bar showing loss, lr and tokens/s."""

    def __init__(self):
        self.progress = _progress()
        self.task = None
        self.last = {}

    def on_start(self, start_step: int, max_steps: int) -> None:
        self.progress.start()
        self.task = self.progress.add_task("train", total=max_steps, completed=start_step, info="")

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.last.update(metrics)
        info = f"loss {self.last['loss'] / 0.6931471805599453:.3f} bits/tok  lr {self.last['lr']:.2e}"
        if "tokens_per_s" in self.last:
            info += f"  {self.last['tokens_per_s']:,.0f} tok/s"
        if "val_bpt" in self.last:
            info += f"  val {self.last['val_bpt']:.3f} bits/tok"
        self.progress.update(self.task, completed=step, info=info)

    def on_eval(self, step: int, metrics: dict[str, float]) -> None:
        self.last.update(metrics)
        self.progress.console.print(
            f"step {step}: train {metrics['train_bpt']:.4f} bits/token, val {metrics['val_bpt']:.4f} bits/token",
            highlight=False,
        )

    def on_end(self) -> None:
        self.progress.stop()
