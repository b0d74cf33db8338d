"""Data preparation at scale: peak memory and throughput of `sublora data prepare` on ~1 GB of text.

Makes a synthetic corpus in /tmp from the Python standard library that ships with this
interpreter (the `pystdlib` source's files): every file copied until the size is reached, into
one folder per copy, each copy with its own header line and `self` renamed, so no two documents
are equal. Then prepares it (the `text` source, bytes tokenizer) with ``prepare_data`` in a child
process, once per worker count, interleaved over repeats, and samples the resident memory (RSS)
of the child and all its descendants (the tokenizer workers) every 20 ms. Prints one table.

    .venv/bin/python benchmarks/data_prepare.py [--size-mb 1024] [--workers 1 2] [--repeats 2]

The prepared output (about 2 bytes per byte of text with the bytes tokenizer, plus the same
again while splitting) is deleted after each run; the corpus is kept for reruns (--keep).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import psutil

STDLIB_EXCLUDED = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


def stdlib_texts() -> list[tuple[str, str]]:
    """(relative path, text) of every UTF-8 .py file of the standard library, tests excluded, sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in STDLIB_EXCLUDED)
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = Path(dirpath) / name
                try:
                    out.append((path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")))
                except (UnicodeDecodeError, OSError):
                    continue
    return sorted(out)


def make_corpus(folder: Path, size_mb: int) -> tuple[int, int]:
    """Write ~size_mb MB of perturbed copies of the standard library; return (files, bytes)."""
    done = folder / ".complete"
    if done.is_file():
        files, size = map(int, done.read_text().split())
        return files, size
    shutil.rmtree(folder, ignore_errors=True)
    texts = stdlib_texts()
    target = size_mb * 1_000_000
    files = size = copy = 0
    self_word = re.compile(r"\bself\b")
    while size < target:
        copy += 1
        tag = f"c{copy:04d}"
        for rel, text in texts:
            out = folder / tag / (rel.replace("/", "__") + ".txt")
            out.parent.mkdir(parents=True, exist_ok=True)
            body = f"# copy {copy} of {rel}\n" + self_word.sub(f"self_{tag}", text)
            data = body.encode("utf-8")
            out.write_bytes(data)
            files += 1
            size += len(data)
            if size >= target:
                break
    done.write_text(f"{files} {size}")
    return files, size


def run_prepare(corpus: Path, out: Path, workers: int | None, baseline_src: Path | None = None) -> dict:
    """One prepare_data in a child process; wall time and peak RSS of its process tree.

    ``baseline_src``: run an older sublora-core (its ``src`` folder first on PYTHONPATH), which
    takes no ``workers``.
    """
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if baseline_src is not None:
        env["PYTHONPATH"] = str(baseline_src)
    kw = "" if workers is None else f", workers={workers}"
    code = ("from sublora.core.config import DataConfig\n"
            "from sublora.core.data import prepare_data\n"
            "if __name__ == '__main__':\n"
            f"    config = DataConfig(source='text', source_options={{'path': {str(corpus)!r}, 'extensions': ['.txt']}})\n"
            f"    prepare_data(config, {str(out)!r}{kw})\n")
    cmd = [sys.executable, "-c", code]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    proc = psutil.Process(child.pid)
    peak = peak_main = 0
    while child.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            rss = {}
            for p in tree:
                try:
                    rss[p.pid] = p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, sum(rss.values()))
            peak_main = max(peak_main, rss.get(child.pid, 0))
        except psutil.Error:
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"prepare failed ({child.returncode}):\n{stderr[-3000:]}")
    sha = (out / "meta.json").read_text()
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "peak_rss": peak, "peak_rss_main": peak_main, "stdout": stdout,
            "meta_sha": re.findall(r'"[0-9a-f]{64}"', sha)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="Corpus size in MB (10^6 bytes).")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "sublora-data-prepare-bench")
    parser.add_argument("--keep", action="store_true", help="Keep the corpus for the next run.")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="Also run an older sublora-core, e.g. the src folder of "
                        "`git archive f1a55c6~1 packages/core/src | tar -x -C /tmp/old` (row 'before').")
    args = parser.parse_args()

    corpus = args.dir / f"corpus-{args.size_mb}mb"
    t0 = time.perf_counter()
    n_files, n_bytes = make_corpus(corpus, args.size_mb)
    print(f"corpus: {corpus} ({n_files:,} files, {n_bytes / 1e6:,.0f} MB; made in "
          f"{time.perf_counter() - t0:.0f} s)", flush=True)
    rows: list[int | str] = [*args.workers, *(["before"] if args.baseline_src else [])]
    results: dict[int | str, list[dict]] = {w: [] for w in rows}
    try:
        for rep in range(args.repeats):
            for w in rows:  # interleaved, so a change in machine load hits every row
                r = (run_prepare(corpus, args.dir / "out", None, args.baseline_src) if w == "before" else
                     run_prepare(corpus, args.dir / "out", w))
                results[w].append(r)
                print(f"repeat {rep + 1} workers {w}: {r['seconds']:.1f} s, {n_bytes / 1e6 / r['seconds']:.1f} MB/s, "
                      f"peak RSS {r['peak_rss'] / 2**20:.0f} MiB (main process {r['peak_rss_main'] / 2**20:.0f})",
                      flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    hashes = {tuple(r["meta_sha"]) for rs in results.values() for r in rs}
    print(f"\nidentical train.bin/val.bin in every run: {len(hashes) == 1}")
    print(f"\n{n_bytes / 1e6:,.0f} MB corpus, {n_files:,} files, bytes tokenizer, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| workers | wall time (median) | throughput | peak RSS, process tree (max) | peak RSS, main process |")
    print("| --- | --- | --- | --- | --- |")
    for w, rs in results.items():
        sec = statistics.median(r["seconds"] for r in rs)
        print(f"| {w} | {sec:.1f} s | {n_bytes / 1e6 / sec:.1f} MB/s | {max(r['peak_rss'] for r in rs) / 2**20:.0f} MiB "
              f"| {max(r['peak_rss_main'] for r in rs) / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
