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
    attempts = (cert.get("searches") or {}).get("attempts") or {}
    delta = attempts.get("delta_per_attempt", cert["bound_settings"]["delta"])
    table = Table(title=f"{title} (each holds with probability >= {1 - delta:.3g})", title_justify="left")
    for col, justify in (("bound", "left"), ("estimator", "left"), ("empirical", "right"), ("bound value", "right"),
                         ("random guess", "right"), ("units", "left"), ("alpha", "right"), ("status", "left")):
        table.add_column(col, justify=justify)
    assumed = []
    for b in cert["bounds"]:
        # Derived, never read: a hand-edited "vacuous" must not relabel a bound.
        status = "[red]VACUOUS[/]" if b["value"] >= b["random_guess"] else "[green]non-vacuous[/]"
        if b.get("assumptions"):  # printed next to the value: the number rests on them
            status += f" [yellow]if ({len(assumed) + 1})[/]"
            assumed.append((b["name"], b["assumptions"]))
        alpha = b["inputs"].get("alpha")
        table.add_row(b["name"], b["estimator"], _fmt(b["empirical"], b["units"]), _fmt(b["value"], b["units"]),
                      _fmt(b["random_guess"], b["units"]), b["units"], "-" if alpha is None else f"{alpha:g}", status)
    out.print(table)
    for i, (name, assumptions) in enumerate(assumed, 1):
        out.print(f"[yellow]({i})[/] {name} holds only if: {'; '.join(assumptions)}", highlight=False)
    j = attempts.get("attempt", 1)
    if j > 1:
        out.print(f"attempt {j} (distinct bound settings certified on this run, bound_attempts.jsonl): every bound "
                  f"at delta = {cert['bound_settings']['delta']:g} / {j * (j + 1)}", highlight=False)
    head = cert.get("headline") or {}
    if head.get("value") is not None:
        out.print(
            f"headline ({head.get('target', 'bits/token')}): {head['name']} <= [bold]{head['value']:.4f}[/] bits/token "
            f"at alpha {head.get('alpha')} (random guess {head['random_guess']:.3f}), valid with probability >= "
            f"{1 - head['delta']:.3g} for being the smallest of {head['candidates']} (each recomputed at "
            f"delta = {head['delta_each']:.3g})",
            highlight=False,
        )
    elif head:
        out.print(f"headline: none ({head.get('note')})", highlight=False)
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
    from sublora.bounds.certificates import certified_dtype

    if (dtype := certified_dtype(cert)) != "float32":  # another predictor than the float32 model: say so next to the numbers
        out.print(f"predictor: the merged network computing in {dtype} (bound.dtype; docs/bounds.md section 2)",
                  highlight=False)
