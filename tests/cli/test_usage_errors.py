"""Usage errors through the installed `sublora` entry point: Typer's own message and exit code 2.

These run the console script pip wrote (not CliRunner), so they test the Typer and click that the
install resolved; .ci/run prints those versions. A library error must still be a one-line message
(exit 2 for a config error) and an unexpected one an internal error (exit 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def _entry_point() -> str:
    script = Path(sys.executable).with_name("sublora")
    found = str(script) if script.exists() else shutil.which("sublora")
    assert found, "the `sublora` console script is not installed next to this Python"
    return found


def run(*args: str, tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("SUBLORA_DEBUG", None)
    return subprocess.run([_entry_point(), *args], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)


def test_missing_required_option_is_a_usage_error(tmp_path):
    result = run("train", tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Missing option '--out'" in result.stderr
    assert "Usage:" in result.stderr and "sublora train" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing was started


def test_bare_command_shows_usage_and_exits_2():
    result = run()
    assert result.returncode == 2, result.stderr
    text = result.stdout + result.stderr
    assert "Usage:" in text and "plugins" in text and "train" in text
    assert "internal error" not in text and "Traceback" not in text


def test_unknown_option_and_unknown_command_are_usage_errors():
    result = run("plugins", "--no-such-option")
    assert result.returncode == 2 and "No such option" in result.stderr
    result = run("trian")
    assert result.returncode == 2 and "No such command" in result.stderr
    assert "internal error" not in result.stderr


def test_help_exits_0():
    result = run("train", "--help")
    assert result.returncode == 0 and "--out" in result.stdout


def test_library_errors_still_go_through_sublora_messages(tmp_path):
    result = run("train", "--out", str(tmp_path / "r"), "--projector", "rdkrom")
    assert result.returncode == 2
    assert "Unknown projector 'rdkrom'. Did you mean 'rdkron'?" in result.stderr
    assert "Traceback" not in result.stderr
