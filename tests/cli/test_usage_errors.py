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


def test_messages_are_printed_as_text_not_as_markup(tmp_path):
    """A path or spec with brackets ([/x] is a closing tag to rich) is shown as it is, never a traceback."""
    result = run("show", str(tmp_path / "runs[/x]"))
    assert result.returncode == 6, result.stderr
    assert "runs[/x]" in result.stderr and "Traceback" not in result.stderr and "internal error" not in result.stderr
    result = run("train", "--out", str(tmp_path / "r"), "--projector", "[bold]x")
    assert result.returncode == 2 and "[bold]x" in result.stderr and "Traceback" not in result.stderr


def _run_dir(tmp_path: Path, manifest, certificate: str | None = None) -> Path:
    import json

    run_dir = tmp_path / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    if certificate is not None:
        (run_dir / "certificate.json").write_text(certificate)
    return run_dir


def test_show_refuses_damaged_files_with_a_next_step(tmp_path):
    from sublora.core.config import RunConfig

    listed = run("show", str(_run_dir(tmp_path / "a", [])))
    assert listed.returncode == 6 and "not a JSON object" in listed.stderr and "hint:" in listed.stderr
    cut = run("show", str(_run_dir(tmp_path / "b", {"config": RunConfig().to_dict()}, certificate='{"bounds": [')))
    assert cut.returncode == 6 and "not valid JSON" in cut.stderr and "--force" in cut.stderr
    no_config = run("show", str(_run_dir(tmp_path / "c", {"status": "trained"})))
    assert no_config.returncode == 6 and "holds no config" in no_config.stderr
    for result in (listed, cut, no_config):
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_a_certificate_without_its_model_says_which_file_is_missing(tmp_path):
    import pytest

    from sublora.core.errors import RunDirError
    from sublora.core.rundir import RunDir

    run_dir = _run_dir(tmp_path, {"config": {}}, certificate="{}")
    with pytest.raises(RunDirError, match="has a certificate but not model.slc") as info:
        RunDir(run_dir).require(certified=True)
    assert "--force" in info.value.hint


def test_a_negative_rescore_seed_is_a_usage_error(tmp_path):
    result = run("verify", str(tmp_path), "--rescore-seed", "-1")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unknown_output_format_and_conflicting_or_misplaced_options_are_refused(tmp_path):
    fmt = run("plugins", "--format", "xml")
    assert fmt.returncode == 2 and "xml" in fmt.stderr
    both = run("train", "--out", str(tmp_path / "r"), "--projector", "dense", "--sublora.projector=rdkron")
    assert both.returncode == 2 and "say different things" in both.stderr and not (tmp_path / "r").exists()
    debug = run("train", "--out", str(tmp_path / "r"), "--debug")
    assert debug.returncode == 2 and "sublora --debug COMMAND" in debug.stderr


def test_a_run_directory_of_another_kind_or_with_a_broken_config_is_named(tmp_path):
    import pytest

    from sublora.core.errors import RunDirError
    from sublora.core.rundir import RunDir

    with pytest.raises(RunDirError, match="is a finetuning run"):
        RunDir(_run_dir(tmp_path / "ft", {"kind": "finetune", "config": {}})).config()
    with pytest.raises(RunDirError, match="manifest.json: its config is not valid") as info:
        RunDir(_run_dir(tmp_path / "bad", {"config": {"train": {"max_steps": "abc"}}})).config()
    assert "restore it" in info.value.hint


def test_help_paragraphs_are_not_broken_where_the_docstring_was(tmp_path):
    """Typer's rich markup mode keeps a docstring's single line breaks; sublora reflows each paragraph."""
    import os

    env = {**os.environ, "COLUMNS": "250"}
    result = subprocess.run([_entry_point(), "sweep", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0
    assert "a failing point is recorded with its error (DIR/sweep.json, DIR/logs/) and does not stop the others" \
        in result.stdout


def test_a_post_hoc_output_directory_is_named_as_such(tmp_path):
    import json

    import pytest

    from sublora.core.errors import RunDirError
    from sublora.core.rundir import RunDir

    out = tmp_path / "posthoc"
    out.mkdir()
    (out / "certificate.json").write_text(json.dumps({"kind": "posthoc"}))
    with pytest.raises(RunDirError, match="holds a post-hoc certificate") as info:
        RunDir(out).read_manifest()
    assert "sublora verify" in info.value.hint
