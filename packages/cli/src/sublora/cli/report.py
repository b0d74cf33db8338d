"""Render a certificate as the results table (and nothing else: formatting only)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from sublora.cli.console import out


def _fmt(value: float, units: str) -> str:
    if units == "error rate":
        return "> 100 %" if value > 1 else f"{100 * value:.2f} %"
    return f"{value:.4f}"


def print_certificate(cert: dict[str, Any], title: str = "Generalization bounds") -> None:
    table = Table(title=f"{title} (each holds with probability >= {1 - cert['bound_settings']['delta']:.2f})",
                  title_justify="left")
    for col, justify in (("bound", "left"), ("estimator", "left"), ("empirical", "right"), ("bound value", "right"),
                         ("random guess", "right"), ("units", "left"), ("alpha", "right"), ("status", "left")):
        table.add_column(col, justify=justify)
    for b in cert["bounds"]:
        # Derived, never read: a hand-edited "vacuous" must not relabel a bound.
        status = "[red]VACUOUS[/]" if b["value"] >= b["random_guess"] else "[green]non-vacuous[/]"
        alpha = b["inputs"].get("alpha")
        table.add_row(b["name"], b["estimator"], _fmt(b["empirical"], b["units"]), _fmt(b["value"], b["units"]),
                      _fmt(b["random_guess"], b["units"]), b["units"], "-" if alpha is None else f"{alpha:g}", status)
    out.print(table)
    head = cert.get("headline")
    if head:
        out.print(
            f"headline: {head['name']} <= [bold]{head['value']:.4f}[/] bits/token (random guess {head['random_guess']:.3f}), "
            f"valid with probability >= {1 - head['delta']:.2f} for being the smallest of {head['candidates']} "
            f"(each recomputed at delta = {head['delta_each']:.3g})",
            highlight=False,
        )
    losses = cert["losses_bits_per_token"]
    out.print(
        f"model: d={cert['d']:,} in D={cert['D']:,}; compressed {cert['compressed_file']} = {cert['code_bits']:,} bits "
        f"(+{cert['prefix_bits'] - cert['code_bits']:.1f} prefix, +{cert['extra_bits']:.2f} extra) "
        f"= {cert['total_bits']:,.1f} bits charged",
        highlight=False,
    )
    out.print(
        f"val loss bits/token: unquantized {losses['unquantized_val']:.4f}, quantized {losses['quantized_val']:.4f}; "
        f"train (quantized) {losses['quantized_train']:.4f}",
        highlight=False,
    )
