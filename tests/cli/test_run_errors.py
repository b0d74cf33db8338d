"""User mistakes and interruptions through the CLI: one clear line and an exit code, never "internal error";
Ctrl-C says where the run stands; a rerun finishes what was left; changed settings are named, never ignored."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

SUBLORA = [sys.executable, "-m", "sublora.cli.app"]
SMOKE = ["--preset", "smoke", "--train.threads=1"]


def sublora(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    return subprocess.run([*SUBLORA, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def assert_user_error(result, code, *phrases):
    assert result.returncode == code, result.stdout + result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.fixture
def finished(smoke_run):
    """The session's `sublora run` with SMOKE's settings (tests/conftest.py): tests that change it copy it."""
    return smoke_run[0]


def _copy(run, tmp_path):
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    return copy


def test_out_naming_a_file(tmp_path):
    (tmp_path / "file").write_text("mine")
    for command in ("train", "run"):
        assert_user_error(sublora(command, *SMOKE, "--out", tmp_path / "file"), 6, "is a file, not a run directory")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.slow
def test_ctrl_c_says_where_the_run_stands_and_a_damaged_state_is_named(tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    proc = subprocess.Popen([*SUBLORA, "train", *SMOKE, "--train.max_steps=3000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            # a shell's background job starts with SIGINT ignored: the child must get the default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 300
    while (not metrics.is_file() or len(metrics.read_text().splitlines()) < 3) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted at step ") and "rerun the same command to resume" in last, stderr
    step = int(last.split("interrupted at step ")[1].split()[0])
    assert json.loads((out / "manifest.json").read_text())["status"] == "training"
    assert all(json.loads(line)["step"] <= step for line in metrics.read_text().splitlines())

    state = out / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    assert_user_error(sublora("train", *SMOKE, "--train.max_steps=3000", "--out", out), 5, "is damaged",
                      "restart this run from step 0")


@pytest.mark.slow
def test_a_cut_last_metrics_line_is_skipped_by_show(finished, tmp_path):
    run = _copy(finished, tmp_path)
    metrics = run / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes()[:-15])
    result = sublora("show", run)
    assert result.returncode == 0, result.stderr
    assert "unreadable line(s) of metrics.jsonl skipped" in result.stdout and "training:" in result.stdout


@pytest.mark.slow
def test_a_missing_best_checkpoint_is_a_clear_error(finished, tmp_path):
    run = _copy(finished, tmp_path)
    (run / "checkpoint" / "best.safetensors").unlink()
    assert_user_error(sublora("bound", "--force", run), 5, "best.safetensors")
    result = sublora("verify", run)
    assert result.returncode != 0 and "best.safetensors" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_interrupted_during_verify_finishes_on_rerun(finished, tmp_path):
    run = _copy(finished, tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "bounded"  # what an interrupt during verify leaves
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = sublora("run", *SMOKE, "--out", run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "certificate verified" in result.stdout
    assert json.loads((run / "manifest.json").read_text())["status"] == "verified"


@pytest.mark.slow
def test_run_on_a_finished_run_names_changed_settings_and_touches_nothing(finished):
    before = {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.is_file()}
    assert_user_error(sublora("run", *SMOKE, "--out", finished, "--train.lr=0.001"), 6,
                      "trained with other settings: train.lr 0.005 -> 0.001", "--rerun-changed")
    assert_user_error(sublora("run", *SMOKE, "--out", finished, "--bound.doc_samples=5"), 6,
                      "other bound settings: bound.doc_samples 6 -> 5",
                      f"sublora bound --force --charge {finished} --bound.doc_samples=5")
    assert_user_error(sublora("train", *SMOKE, "--out", finished, "--sublora.seed=3"), 6,
                      "sublora.seed 0 -> 3")
    assert before == {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_new_bound_settings_on_a_certified_run_are_paid_for(finished, tmp_path):
    run = _copy(finished, tmp_path)
    refused = sublora("run", *SMOKE, "--out", run, "--bound.doc_samples=5", "--rerun-changed")
    assert refused.returncode != 0 and "--charge" in refused.stderr and "Traceback" not in refused.stderr
    paid = sublora("run", *SMOKE, "--out", run, "--bound.doc_samples=5", "--rerun-changed", "--charge")
    assert paid.returncode == 0, paid.stdout + paid.stderr
    cert = json.loads((run / "certificate.json").read_text())
    assert cert["searches"]["attempts"]["attempt"] == 2 and "attempt 2" in paid.stdout


@pytest.mark.slow
def test_rerun_changed_retrains_and_keeps_the_old_run(finished, tmp_path):
    run = _copy(finished, tmp_path)
    result = sublora("run", *SMOKE, "--out", run, "--train.max_steps=20", "--rerun-changed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "moved the old run" in result.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config"]["train"]["max_steps"] == 20 and manifest["status"] == "verified"
    (old,) = (tmp_path / ".replaced").iterdir()
    assert json.loads((old / "manifest.json").read_text())["config"]["train"]["max_steps"] == 30
