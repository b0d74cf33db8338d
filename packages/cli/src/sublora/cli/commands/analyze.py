"""`sublora analyze RESULTS_DIR`: tables and figures from every run's manifest and certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from sublora.cli.console import out


def analyze(
    results: Annotated[Path, typer.Argument(help="A directory of run directories (e.g. a sweep's --out).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write (default: RESULTS/analysis).")] = None,
    bound: Annotated[str, typer.Option("--bound", help="'headline' or a bound name, e.g. token_freedman_bpd.")] = "headline",
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="Method the improvement is measured "
                                                    "against (default: the one named uniform, else the first).")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the figures (PNG and PDF).")] = True,
) -> None:
    """Summarize a results directory: CSV + LaTeX tables and the figures of the allocation study."""
    from sublora.bounds.analysis import collect, summarize, write_tables
    from sublora.core.errors import RunDirError

    if plots:
        _check_matplotlib()
    records = collect(results, bound=bound)
    if not records:
        raise RunDirError(f"No run with a certificate under {results}.",
                          hint="Run `sublora sweep GRID.yaml --out DIR` (or `sublora bound` on each run) first.")
    summaries = summarize(records, baseline=baseline)
    target = out_dir or Path(results) / "analysis"
    written = write_tables(summaries, target)
    if plots:
        from sublora.bounds.analysis.plots import plot_all

        written += plot_all(summaries, records, target)

    table = Table(title=f"{len(records)} runs in {results}: {records[0].bound_name if bound != 'headline' else 'headline'} "
                        "bound (bits/token), mean +- std over replicates", title_justify="left")
    for col, justify in (("d", "right"), ("method", "left"), ("runs", "right"), ("empirical", "right"),
                         ("bits", "right"), ("bound", "right"), ("size KB", "right"), ("vs baseline", "right")):
        table.add_column(col, justify=justify)
    for s in summaries:
        pm = lambda k, f: f"{s.mean[k]:{f}} +- {s.std[k]:{f}}"  # noqa: E731
        table.add_row(str(s.budget), s.method, str(s.n), pm("empirical", ".3f"), pm("total_bits", ".0f"),
                      pm("bound", ".3f"), pm("size_kb", ".2f"),
                      "" if s.improvement_pct is None else f"{s.improvement_pct:+.1f} %")
    out.print(table)
    from sublora.bounds.analysis.tables import gamma_depth

    depth = gamma_depth(records)
    if depth:
        rhos = ", ".join(f"{d.rho:+.2f}" for d in depth)
        out.print(f"gamma_l vs depth (learned runs, Spearman's rho): mean {sum(d.rho for d in depth) / len(depth):+.2f} "
                  f"over {len(depth)} runs ({rhos}); gamma_depth.csv has the p-values", highlight=False)
    out.print(f"wrote {len(written)} files to {target}:", highlight=False)
    for path in written:
        out.print(f"  {path.name}", highlight=False)


def _check_matplotlib() -> None:
    """Fail before any work when the figures cannot be drawn (matplotlib comes with sublora-bounds[plots])."""
    import importlib.util

    from sublora.core.errors import SubloraError

    if importlib.util.find_spec("matplotlib") is None:
        raise SubloraError("The figures need matplotlib, which is not installed.",
                           hint="pip install 'sublora-bounds[plots]', or pass --no-plots for the tables alone.")
