"""Start-up time of the CLI (issue 14 item 5): `sublora --help` < 0.5 s, `sublora plugins` < 1 s.

    .venv/bin/python benchmarks/startup.py [--repeats 7]

"first" is the first call of this script (the page cache and byte-code cache may still be warm from
earlier use), "warm" the median of the repeats that follow, interleaved between the commands.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SUBLORA = Path(sys.executable).with_name("sublora")
COMMANDS = {"sublora --help": ["--help"], "sublora plugins": ["plugins"], "sublora plugins azuma": ["plugins", "azuma"]}
TARGETS = {"sublora --help": 0.5, "sublora plugins": 1.0, "sublora plugins azuma": 1.0}


def timed(args: list[str], env=None) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(SUBLORA), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    first = {name: timed(cmd) for name, cmd in COMMANDS.items()}
    warm: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, cmd in COMMANDS.items():
            warm[name].append(timed(cmd))
    print(f"{'command':<24} {'first [s]':>9} {'warm median [s]':>16} {'target [s]':>10}  ok   (load {os.getloadavg()[0]:.1f})")
    for name in COMMANDS:
        med = statistics.median(warm[name])
        print(f"{name:<24} {first[name]:>9.3f} {med:>16.3f} {TARGETS[name]:>10.1f}  {'yes' if med < TARGETS[name] else 'no'}")


if __name__ == "__main__":
    main()
