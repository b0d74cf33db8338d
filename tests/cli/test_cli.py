"""The CLI: fast help, plugin listing, one-line errors with exit codes, debug tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SUBLORA = [sys.executable, "-m", "sublora.cli.app"]


def sublora(*args, cwd=None, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SUBLORA_DEBUG", None)
    if env and "SUBLORA_DEBUG" in env:
        full_env["SUBLORA_DEBUG"] = env["SUBLORA_DEBUG"]
    return subprocess.run([*SUBLORA, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=timeout)


def test_help_lists_every_command():
    result = sublora("--help")
    assert result.returncode == 0
    for command in ("run", "train", "bound", "verify", "plugins", "data", "show"):
        assert command in result.stdout


def test_help_and_plugins_do_not_import_heavy_libraries(fresh_python):
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from sublora.cli.app import app\n"
        "r = CliRunner().invoke(app, ['plugins', '--format', 'json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'peft', 'scipy', 'datasets') if m in sys.modules)))\n"
    )
    assert fresh_python(code) == []


def test_bad_input_is_refused_before_torch_is_imported(tmp_path, fresh_python):
    """Typos, wrong paths and a file as --out answer at once (importing torch alone takes ~1 s)."""
    (tmp_path / "file").write_text("x")
    calls = [["train", "--out", str(tmp_path / "r"), "--projector", "rdkrom"],
             ["train", "--out", str(tmp_path / "file")],
             ["train", "--out", str(tmp_path / "r"), "--train.lr=-1"],
             ["finetune", "--out", str(tmp_path / "f"), "--task", "nosuch"],
             *([command, str(tmp_path / "missing")] for command in ("bound", "verify", "sample")),
             ["export", str(tmp_path / "missing"), "--hf", str(tmp_path / "hf")]]
    code = (
        "import sys, json\n"
        "from sublora.cli.app import main\n"
        "codes = []\n"
        f"for args in {calls!r}:\n"
        "    sys.argv = ['sublora', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "print(json.dumps([codes, 'torch' in sys.modules]))\n"
    )
    codes, torch_imported = fresh_python(code)
    assert all(code in (2, 6) for code in codes), codes
    assert not torch_imported


def test_plugins_lists_builtins_and_the_example_plugin():
    result = sublora("plugins", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    assert rows[("projector", "rdkron")]["package"] == "sublora-projectors"
    assert rows[("projector", "rdkron")]["variants"] == ["qr"]
    assert rows[("bound", "freedman")]["status"] == "ok"
    plugin = rows[("projector", "hashing")]
    assert plugin["package"] == "sublora-example-plugins" and plugin["status"] == "ok"
    table = sublora("plugins")
    assert "hashing" in table.stdout and "sublora-example-plugins" in table.stdout


def test_unknown_projector_is_one_clear_line_without_traceback(tmp_path):
    result = sublora("train", "--out", tmp_path / "r", "--projector", "rdkrom")
    assert result.returncode == 2
    assert "Unknown projector 'rdkrom'. Did you mean 'rdkron'?" in result.stderr
    assert "Available projectors:" in result.stderr and "dense" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_invalid_config_value_names_the_field(tmp_path):
    result = sublora("train", "--out", tmp_path / "r", "--train.lr=-1")
    assert result.returncode == 2
    assert "train.lr" in result.stderr and "Traceback" not in result.stderr
    result = sublora("train", "--out", tmp_path / "r", "--train.nosuchfield=3")
    assert result.returncode == 2 and "train.nosuchfield: unknown field" in result.stderr


def test_debug_switch_shows_the_traceback(tmp_path):
    result = sublora("--debug", "train", "--out", tmp_path / "r", "--projector", "rdkrom")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_data_prepare_and_empty_corpus(tmp_path, text_corpus):
    result = sublora("data", "prepare", "--source", "text", f"--data.source_options={{path: {text_corpus}}}",
                     "--out", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    for name in ("train.bin", "val.bin", "eot_indices.npy", "doc_lengths.npy", "meta.json"):
        assert (tmp_path / "data" / name).is_file()
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["vocab_size"] == 257 and meta["n_documents"]["train"] + meta["n_documents"]["val"] == 8

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("")
    result = sublora("data", "prepare", "--source", "text", f"--data.source_options={{path: {empty}}}",
                     "--out", tmp_path / "data2")
    assert result.returncode == 4
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_bound_on_a_missing_run_dir(tmp_path):
    result = sublora("bound", tmp_path / "nothing")
    assert result.returncode == 6
    assert "nothing does not exist" in result.stderr and "hint:" in result.stderr
