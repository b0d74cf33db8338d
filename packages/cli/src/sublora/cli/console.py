"""Shared rich consoles: results on stdout, messages and progress on stderr.

When output is not a terminal (logs, CI), tables get a wide fixed width
instead of rich's 80-column default, so they stay readable in files.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console


def _width(stream) -> int | None:
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 160


out = Console(width=_width(sys.stdout))
err = Console(stderr=True, width=_width(sys.stderr))
