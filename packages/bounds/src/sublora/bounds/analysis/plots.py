"""The figures of `sublora analyze` (matplotlib, Agg backend), each saved as PNG and PDF.

Sized for a paper column or page: labelled axes with units, legends, error bars
(std over replicates), no overlapping text. One function per figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sublora.bounds.analysis.collect import RunRecord, layer_index  # noqa: E402
from sublora.bounds.analysis.tables import Summary  # noqa: E402

plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
                     "figure.dpi": 100, "savefig.bbox": "tight"})
MARKERS = "osD^vP*Xh<>"


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=200)
    fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _style(methods: list[str]) -> dict[str, tuple]:
    colors = plt.get_cmap("tab10").colors
    return {m: (colors[i % len(colors)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(methods)}


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (lower x, lower y), sorted by x."""
    front, best_y = [], np.inf
    for x, y in sorted(points):
        if y < best_y:
            front.append((x, y))
            best_y = y
    return front


def pareto_frontier(summaries: list[Summary], budget: int, out_dir: Path, style) -> list[Path]:
    rows = [s for s in summaries if s.budget == budget]
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    for s in rows:
        color, marker = style[s.method]
        ax.errorbar(s.mean["total_bits"], s.mean["empirical"], xerr=s.std["total_bits"], yerr=s.std["empirical"],
                    fmt=marker, color=color, capsize=3, markersize=6, label=f"{s.method} (n={s.n})")
    front = _pareto([(s.mean["total_bits"], s.mean["empirical"]) for s in rows])
    if len(front) > 1:
        ax.step(*zip(*front), where="post", color="0.4", linestyle="--", linewidth=1, label="Pareto frontier")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set_xlabel("complexity C(h) + extra (bits)")
    ax.set_ylabel("empirical risk (smoothed bits/token)")
    ax.set_title(f"Complexity vs empirical risk, d = {budget}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", frameon=False)
    return _save(fig, out_dir, f"pareto_frontier_d{budget}")


def compression_comparison(summaries: list[Summary], budget: int, out_dir: Path, style) -> list[Path]:
    rows = [s for s in summaries if s.budget == budget]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), layout="constrained")
    panels = [("total_bits", "empirical", "complexity (bits)", "empirical risk (bits/token)", False),
              ("total_bits", "bound", "complexity (bits)", "bound (bits/token)", False),
              ("size_kb", "empirical", "compressed size (KB, log scale)", "empirical risk (bits/token)", True)]
    for ax, (xk, yk, xl, yl, logx) in zip(axes, panels):
        for s in rows:
            color, marker = style[s.method]
            xs = [getattr(r, xk) for r in s.runs]
            ys = [getattr(r, yk) for r in s.runs]
            ax.scatter(xs, ys, color=color, marker=marker, alpha=0.35, s=14)
            ax.errorbar(s.mean[xk], s.mean[yk], xerr=s.std[xk], yerr=s.std[yk], fmt=marker, color=color, capsize=3,
                        markersize=7, markeredgecolor="black", markeredgewidth=0.5, label=s.method)
        if logx:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels overlap
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        else:
            ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title("complexity vs risk")
    axes[1].set_title("complexity vs bound")
    axes[2].set_title("compressed size vs risk")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5), frameon=False)
    fig.suptitle(f"Compression comparison, d = {budget} (small markers: single runs; large: mean +- std)")
    return _save(fig, out_dir, f"compression_comparison_d{budget}")


def allocation_grid(summaries: list[Summary], out_dir: Path) -> list[Path]:
    budgets = sorted({s.budget for s in summaries})
    methods = list(dict.fromkeys(s.method for s in summaries))
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4))
    panels = [("empirical", "empirical risk (bits/token)"), ("bound", "bound (bits/token)"),
              ("size_kb", "compressed size (KB)"), (None, "bound improvement over baseline (%)")]
    width = 0.8 / max(1, len(budgets))
    x = np.arange(len(methods))
    colors = plt.get_cmap("Set2").colors
    for ax, (key, label) in zip(axes.flat, panels):
        for j, budget in enumerate(budgets):
            by_method = {s.method: s for s in summaries if s.budget == budget}
            if key is None:
                vals = [by_method[m].improvement_pct if m in by_method and by_method[m].improvement_pct is not None
                        else np.nan for m in methods]
                errs = None
            else:
                vals = [by_method[m].mean[key] if m in by_method else np.nan for m in methods]
                errs = [by_method[m].std[key] if m in by_method else 0 for m in methods]
            ax.bar(x + (j - (len(budgets) - 1) / 2) * width, vals, width, yerr=errs, capsize=2,
                   color=colors[j % len(colors)], edgecolor="black", linewidth=0.4, label=f"d = {budget}")
        if key is None:
            ax.axhline(0, color="black", linewidth=0.8)
        elif key != "size_kb":
            lo = np.nanmin([s.mean[key] - s.std[key] for s in summaries])
            hi = np.nanmax([s.mean[key] + s.std[key] for s in summaries])
            pad = 0.15 * max(hi - lo, 0.02 * abs(hi), 1e-6)  # bars differ in the digits that matter
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(x, methods, rotation=25, ha="right")
        ax.ticklabel_format(axis="y", useOffset=False, style="plain")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(frameon=False)
    axes[0, 0].set_title("Empirical risk")
    axes[0, 1].set_title("Generalization bound")
    axes[1, 0].set_title("Compressed model size")
    axes[1, 1].set_title("Relative improvement of the bound")
    fig.tight_layout()
    return _save(fig, out_dir, "allocation_comparison_grid")


def _learned(records: list[RunRecord], budget: int | None = None) -> list[RunRecord]:
    return [r for r in records if r.mode == "learned" and r.gammas and (budget is None or r.budget == budget)]


def _layers(records: list[RunRecord]) -> list[str]:
    return sorted({k for r in records for k in r.gammas}, key=lambda k: (layer_index(k), k))


def gating_heatmap(records: list[RunRecord], budget: int, out_dir: Path) -> list[Path]:
    runs = sorted(_learned(records, budget), key=lambda r: (r.method, r.replicate))
    layers = _layers(runs)
    grid = np.array([[r.gammas.get(k, np.nan) for k in layers] for r in runs])  # (runs, layers)
    fig, ax = plt.subplots(figsize=(max(3.5, 0.55 * len(layers) + 2), max(2.0, 0.45 * len(runs) + 1.2)))
    im = ax.imshow(grid, cmap="coolwarm", vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_yticks(range(len(runs)), [f"{r.method} {r.replicate}" if len({x.method for x in runs}) > 1
                                     else r.replicate for r in runs])
    ax.set_xlabel("layer")
    ax.set_ylabel("run (replicate)")
    fig.colorbar(im, ax=ax, label="gamma (share of the layer's budget to B)")
    ax.set_title(f"Learned allocation per layer, d = {budget}")
    return _save(fig, out_dir, f"learned_gating_heatmap_d{budget}")


def gating_trend(records: list[RunRecord], out_dir: Path) -> list[Path]:
    learned = _learned(records)
    layers = _layers(learned)
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    colors = plt.get_cmap("tab10").colors
    for i, budget in enumerate(sorted({r.budget for r in learned})):
        runs = [r for r in learned if r.budget == budget]
        values = np.array([[r.gammas.get(k, np.nan) for k in layers] for r in runs])
        mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
        xs = np.arange(len(layers))
        ax.plot(xs, mean, marker="o", color=colors[i], label=f"d = {budget} (n={len(runs)})")
        ax.fill_between(xs, mean - std, mean + std, color=colors[i], alpha=0.2)
    ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="equal split")
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylim(0, 1)
    ax.set_xlabel("layer (depth)")
    ax.set_ylabel("gamma (share to B), mean +- std")
    ax.set_title("Learned allocation over depth")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _save(fig, out_dir, "learned_gating_trend")


def bound_breakdown(summaries: list[Summary], out_dir: Path) -> list[Path]:
    labels = [f"d={s.budget} {s.method}" for s in summaries]
    parts = [("empirical", "empirical risk", "#4C72B0"), ("complexity_term", "complexity term", "#DD8452"),
             ("confidence_term", "confidence term", "#55A868")]
    fig, ax = plt.subplots(figsize=(6.4, 0.38 * len(summaries) + 1.4))
    y = np.arange(len(summaries))
    left = np.zeros(len(summaries))
    for key, name, color in parts:
        vals = np.array([s.mean[key] for s in summaries])
        ax.barh(y, vals, left=left, color=color, edgecolor="black", linewidth=0.4, label=name)
        left += vals
    for i, s in enumerate(summaries):
        ax.text(left[i], i, f" {s.mean['bound']:.3f}", va="center", fontsize=7)
    guess = summaries[0].runs[0].random_guess if summaries else None
    if guess is not None:
        ax.axvline(guess, color="red", linestyle=":", linewidth=1, label=f"random guess ({guess:.2f})")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    name = summaries[0].runs[0].bound_name if summaries else "bound"
    ax.set_xlabel(f"bits/token ({name}; mean over replicates)")
    ax.set_title("Bound breakdown: empirical + complexity + confidence")
    ax.legend(loc="lower right", frameon=True, fontsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, out_dir, "bound_breakdown")


def plot_all(summaries: list[Summary], records: list[RunRecord], out_dir: str | Path) -> list[Path]:
    """Every figure the data supports; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    style = _style(list(dict.fromkeys(s.method for s in summaries)))
    written: list[Path] = []
    for budget in sorted({s.budget for s in summaries}):
        written += pareto_frontier(summaries, budget, out_dir, style)
        written += compression_comparison(summaries, budget, out_dir, style)
    written += allocation_grid(summaries, out_dir)
    for budget in sorted({r.budget for r in _learned(records)}):
        written += gating_heatmap(records, budget, out_dir)
    if _learned(records):
        written += gating_trend(records, out_dir)
    written += bound_breakdown(summaries, out_dir)
    return written
