"""LM-GC's rate next to the classical codecs, per serialization x bytes per group, on the same bytes.

One input stream (a raw float32 file or one checkpoint of a gradient directory) is coded with the
prior for every serialization x bytes-per-group asked for (encode only: the rate is the coded
payload; decoding is exercised by `sublora lmgc decompress`, the tests and benchmarks/lmgc.py),
and the baselines (sublora.lmgc.baselines: whole stream and per 512-byte chunk) compress the very
same bytes. rate = 100 x compressed bytes / raw bytes. ``max_bytes`` keeps the run short on a
CPU: evenly spaced 512-byte chunks of the stream, the same ones for every method.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sublora.lmgc.codec import CodecSettings, encode, rate
from sublora.lmgc.prior import Prior
from sublora.lmgc.serialize import CHUNK, SERIALIZATIONS

COLUMNS = ("method", "serialization", "bytes_per_group", "mode", "bytes", "rate", "ideal_rate", "tokens",
           "tokens_per_float", "seconds", "tokens_per_second", "mb_per_hour", "status")


def sample_chunks(raw: bytes, max_bytes: int | None) -> tuple[bytes, dict[str, Any]]:
    """``raw`` itself, or evenly spaced whole 512-byte chunks of it totalling at most ``max_bytes``."""
    if max_bytes is None or len(raw) <= max_bytes:
        return raw, {"sampled": False, "bytes": len(raw)}
    total = -(-len(raw) // CHUNK)
    keep = max(1, max_bytes // CHUNK)
    picks = np.unique(np.linspace(0, total - 1, keep).round().astype(int)).tolist()
    # the last chunk may be short; a whole number of float32 values either way
    out = b"".join(raw[i * CHUNK:(i + 1) * CHUNK] for i in picks)
    return out, {"sampled": True, "bytes": len(out), "of_bytes": len(raw), "chunks": picks}


def lmgc_rows(raw: bytes, prior: Prior, serializations: list[str], groups: list[int | None],
              window: int | None = None, floor: float | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> list[dict[str, Any]]:
    """One row per serialization x bytes per group: coded bytes, rate, the ideal (sum -log2 p) rate, speed."""
    rows = []
    for name in serializations:
        for group in groups:
            settings = CodecSettings.make(serialization=name, bytes_per_group=group, window=window,
                                     **({} if floor is None else {"floor": floor}))
            label = f"{name}/{'none' if group is None else group}"
            start = time.perf_counter()
            header, words = encode(raw, prior, settings,
                                   None if progress is None else (lambda d, t, label=label: progress(label, d, t)))
            seconds = time.perf_counter() - start
            coded = int(words.size) * 4
            rows.append({"method": "lm-gc", "serialization": name, "bytes_per_group": group, "mode": "windows",
                         "bytes": coded, "rate": rate(coded, len(raw)),
                         "ideal_rate": rate(header["bits"]["ideal"] / 8, len(raw)), "tokens": header["tokens"],
                         "tokens_per_float": header["tokens"] / (len(raw) / 4), "seconds": seconds,
                         "tokens_per_second": header["tokens"] / seconds,
                         "mb_per_hour": len(raw) / 1e6 / seconds * 3600, "status": "ok"})
    return rows


def baseline_rows(raw: bytes, codecs: list[str] | None = None) -> list[dict[str, Any]]:
    from sublora.lmgc.baselines import rates

    return [{"method": r["codec"], "serialization": None, "bytes_per_group": None, "mode": r["mode"],
             "bytes": r["bytes"], "rate": r["rate"], "status": r["status"]} for r in rates(raw, codecs)]


def best_baseline(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [r for r in rows if r["method"] != "lm-gc" and r.get("rate") is not None]
    return min(ok, key=lambda r: r["rate"]) if ok else None


def parse_list(values: list[str] | None, default: list[str], every: list[str]) -> list[str]:
    """Comma-separated and repeated option values; 'all' means every value."""
    out = [v.strip() for value in (values or default) for v in value.split(",") if v.strip()]
    return list(every) if "all" in out else out


def parse_serializations(values: list[str] | None) -> list[str]:
    from sublora.lmgc.serialize import get_serialization

    return [get_serialization(v).name for v in parse_list(values, ["hex-space"], list(SERIALIZATIONS))]


def parse_groups(values: list[str] | None) -> list[int | None]:
    from sublora.lmgc.serialize import BYTES_PER_GROUP, parse_bytes_per_group

    every = ["none" if g is None else str(g) for g in BYTES_PER_GROUP]
    return [parse_bytes_per_group(v) for v in parse_list(values, ["4"], every)]


def write_results(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any], plot: bool = True) -> list[Path]:
    """bench.csv, bench.json (rows + what was measured) and bench.png (bar plot) in ``out``."""
    from sublora.core.checkpoint import write_atomic

    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "bench.csv", buffer.getvalue().encode())
    write_atomic(out / "bench.json", json.dumps({**meta, "rows": rows}, indent=2, default=str).encode())
    written = [out / "bench.csv", out / "bench.json"]
    if plot:
        written.append(bar_plot(rows, out / "bench.png", meta.get("title", "")))
    return written


def label(row: dict[str, Any]) -> str:
    if row["method"] == "lm-gc":
        group = "none" if row["bytes_per_group"] is None else row["bytes_per_group"]
        return f"LM-GC {row['serialization']}/{group}"
    return f"{row['method']} ({row['mode']})"


def bar_plot(rows: list[dict[str, Any]], path: Path, title: str = "") -> Path:
    """Horizontal bars of rate (%) per method, LM-GC in one colour, the baselines in another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("rate") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(shown) + 1.4))
    colours = ["tab:blue" if r["method"] == "lm-gc" else "tab:gray" for r in shown]
    ax.barh([label(r) for r in shown], [r["rate"] for r in shown], color=colours)
    ax.axvline(100.0, color="black", lw=0.8, ls=":")
    for y, r in enumerate(shown):
        ax.text(r["rate"], y, f" {r['rate']:.1f}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rate = 100 x compressed / raw (%), lower is better")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
