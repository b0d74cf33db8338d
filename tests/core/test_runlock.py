"""One writer per run directory: RUN/.lock with pid + host, taken atomically, stale locks replaced."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from sublora.core.errors import CheckpointError, RunDirError
from sublora.core.runlock import LOCK_NAME, lock_holder, run_lock

HOLD = textwrap.dedent("""
    import sys, time
    from sublora.core.runlock import run_lock
    with run_lock(sys.argv[1], "holder for the test"):
        print("locked", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """Another process holding RUN/.lock."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    yield run, proc
    proc.kill()
    proc.wait()


def test_a_second_process_is_refused_with_the_holder_named(holder, tiny_config):
    from sublora.core.train import train

    run, proc = holder
    with pytest.raises(RunDirError, match=rf"in use by `holder for the test` \(pid {proc.pid} on this host") as info:
        with run_lock(run):
            pass
    assert str(run / LOCK_NAME) in info.value.hint
    with pytest.raises(RunDirError, match="in use"):
        train(tiny_config, run)
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the refused train wrote nothing
    assert lock_holder(run)["pid"] == proc.pid


def test_the_lock_of_a_killed_process_is_stale_and_taken_over(holder):
    run, proc = holder
    proc.kill()  # SIGKILL: no cleanup, the lock file stays
    proc.wait()
    assert (run / LOCK_NAME).is_file() and lock_holder(run) is None
    with run_lock(run, "me"):
        assert json.loads((run / LOCK_NAME).read_text())["command"] == "me"
    assert not (run / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_respected(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": socket.gethostname() + "-elsewhere",
                                             "command": "sublora train", "started": "then"}))
    with pytest.raises(RunDirError, match="-elsewhere"):
        with run_lock(run):
            pass


def test_a_lock_left_by_an_earlier_process_with_our_pid_is_stale(tmp_path):
    import os

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": "old"}))
    with run_lock(run):
        pass


def test_reentrant_in_one_process_and_leaves_no_trace(tmp_path):
    run = tmp_path / "new" / "run"
    with run_lock(run) as path:
        with run_lock(run):  # e.g. `sublora run` holds it while train, bound and verify take it too
            assert path.is_file()
        assert path.is_file()
    assert not (tmp_path / "new").exists()  # created for the lock, left empty: removed again
    with pytest.raises(RunDirError, match="is a file"):
        (tmp_path / "file").write_text("x")
        with run_lock(tmp_path / "file"):
            pass


@pytest.mark.slow  # fresh processes: ~5 s
def test_the_auditors_race_two_trainings_on_one_out(tmp_path, make_tiny_config):
    """Two `train` processes, seeds 0 and 1, on one --out: one is refused, the run stays whole."""
    from sublora.core.checkpoint import read_checkpoint

    code = textwrap.dedent("""
        import json, os, sys, time
        from sublora.core.config import RunConfig
        from sublora.core.train import train
        from sublora.core.errors import RunDirError
        config = RunConfig.from_dict(json.loads(sys.argv[2]))
        print("ready", flush=True)
        while not os.path.exists(sys.argv[3]):  # start together
            time.sleep(0.001)
        try:
            train(config, sys.argv[1])
            print("trained")
        except RunDirError as exc:
            print("refused:", exc.message)
    """)
    run, go = tmp_path / "run", tmp_path / "go"
    procs = []
    for seed in (0, 1):
        config = make_tiny_config(train={"seed": seed, "max_steps": 40})
        procs.append(subprocess.Popen([sys.executable, "-c", code, str(run), json.dumps(config.to_dict()), str(go)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert [p.stdout.readline().strip() for p in procs] == ["ready", "ready"]
    go.write_text("")
    outs = sorted(p.communicate(timeout=300)[0].strip() for p in procs)
    assert outs[0].startswith("refused:") and "in use" in outs[0] and outs[1] == "trained", outs
    manifest = json.loads((run / "manifest.json").read_text())
    _, metadata = read_checkpoint(run / "checkpoint" / "best.safetensors")
    from sublora.core.checkpoint import training_identity
    from sublora.core.config import RunConfig

    assert metadata["training_identity"] == training_identity(RunConfig.from_dict(manifest["config"]))


def test_a_manifest_that_is_not_the_checkpoints_is_caught(tmp_path, make_tiny_config):
    """The files of two runs mixed in one directory (what the race used to leave) are refused by load_trained."""
    from sublora.core.train import load_trained, train

    train(make_tiny_config(train={"seed": 0}), tmp_path / "a")
    train(make_tiny_config(train={"seed": 1}), tmp_path / "b")
    (tmp_path / "a" / "manifest.json").write_bytes((tmp_path / "b" / "manifest.json").read_bytes())
    with pytest.raises(CheckpointError, match="two processes"):
        load_trained(tmp_path / "a")


def test_bound_and_verify_take_the_lock_too(holder):
    """Certifying or verifying while another process works in the run directory is refused, nothing written."""
    from sublora.bounds.certify import certify
    from sublora.bounds.verify import verify

    run, proc = holder
    for step in (certify, verify):
        with pytest.raises(RunDirError, match=rf"in use by `holder for the test` \(pid {proc.pid}"):
            step(run)
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]
