"""Sweep launchers: the `sublora.launchers` kind, per-point resources from the grid, the slurm launcher's
job arrays (sbatch scripts written by submitit, checked without a cluster), a lost job picked up by the
next sweep, and (slow) a point whose process is killed mid-run under submitit's local executor, resumed
by rerunning the sweep."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sublora.cli.sweeper import Sweep, make_launcher
from sublora.core.errors import ConfigError, PluginLoadError, UnknownComponentError
from sublora.core.launcher import Launcher, LauncherConfig, Resources, minutes_of
from sublora.core.registry import registry
from sublora.core.sweep import Grid, load_grid

TINY_BASE = {
    "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
    "sublora": {"intrinsic_dim": 32, "projector": "rdkron"},
    "train": {"max_steps": 4, "batch_size": 2, "warmup_steps": 1, "eval_interval": 2, "eval_batches": 1,
              "log_interval": 2, "checkpoint_interval": 2, "threads": 1},
    "bound": {"doc_samples": 3, "token_blocks": 8},
}


def grid(text_corpus, **extra) -> Grid:
    base = copy.deepcopy(TINY_BASE)
    base["data"] = {"source": "text", "source_options": {"path": str(text_corpus)}}
    axes = extra.pop("axes", [{"name": "p", "values": {"a": {"sublora.seed": 0}, "b": {"sublora.seed": 1}}}])
    return Grid.model_validate({"name": "t", "base": base, "axes": axes, **extra})


# ------------------------------------------------------------------------------------------------ the kind


def test_launchers_are_a_plugin_kind_with_local_and_slurm_built_in():
    entries = {e.name: e for e in registry("launcher").entries()}
    assert {"local", "slurm"} <= set(entries) and entries["slurm"].distribution == "sublora-cli"
    config = registry("launcher").config("slurm", {"executor": "local", "jobs": 2})
    assert isinstance(config, LauncherConfig) and config.kind == "launcher" and config.jobs == 2
    with pytest.raises(ConfigError, match="Invalid options for launcher 'slurm': partiton: unknown field"):
        registry("launcher").config("slurm", {"partiton": "gpu"})  # a resource, and misspelt: not an option
    with pytest.raises(UnknownComponentError, match="Unknown launcher 'slrum'. Did you mean 'slurm'"):
        make_launcher("slrum")


def test_the_local_launcher_takes_jobs_from_the_command_line_over_the_grid(text_corpus):
    g = grid(text_corpus, launchers={"local": {"jobs": 3}})
    assert make_launcher("local", g).jobs == 3 and make_launcher("local", g, jobs=2).jobs == 2
    assert make_launcher("local").jobs == 1 and make_launcher("local", g, jobs=2).default_threads(Resources()) == \
        max(1, (os.cpu_count() or 1) // 2)


# ------------------------------------------------------------------------------------------------ resources


@pytest.mark.parametrize("text,minutes", [(90, 90), ("90", 90), ("1:30:00", 90), ("2-00:00:00", 2880),
                                          ("0:30", 1), ("12:00:00", 720)])
def test_time_limits_read_as_slurm_writes_them(text, minutes):
    assert minutes_of(text) == minutes


def test_resources_are_validated_and_set_per_point_by_axes(text_corpus):
    g = grid(text_corpus, resources={"partition": "gpu", "gpus": 1, "cpus": 8, "mem": "32G", "time": "12:00:00"},
             axes=[{"name": "d", "values": {"d25k": {"sublora.intrinsic_dim": 40},
                                            "d100k": {"sublora.intrinsic_dim": 48, "resources.gpus": 4,
                                                      "resources.mem": "128G"}}}])
    small, big = g.points()
    assert g.resources_of(small) == Resources(partition="gpu", gpus=1, cpus=8, mem="32G", time="12:00:00")
    assert g.resources_of(big).gpus == 4 and g.resources_of(big).mem_gb == 128 and g.resources_of(big).cpus == 8
    assert g.config(big).sublora.intrinsic_dim == 48  # resources.* never reach the run's config
    assert Resources(mem="512M").mem_gb == 0.5 and Resources(time="1:00:00").minutes == 60
    with pytest.raises(Exception, match="'lots' is not an amount of memory"):
        Resources(mem="lots")
    with pytest.raises(Exception, match="not a time limit"):
        Resources(time="soon")
    with pytest.raises(Exception, match="point 'd100k': resources: gpu: unknown field"):
        grid(text_corpus, axes=[{"name": "d", "values": {"d100k": {"resources.gpu": 4}}}])


def test_a_bad_resources_block_in_a_grid_file_names_the_field(tmp_path, text_corpus):
    data = grid(text_corpus).model_dump(mode="json")
    data["resources"] = {"gpus": -1}
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="resources.gpus: Input should be greater than or equal to 0"):
        load_grid(tmp_path / "g.yaml")


# ------------------------------------------------------------------------------------------------ slurm


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch):
    """An `sbatch` on PATH that keeps each script it is given and answers with a job id, as SLURM does."""
    pytest.importorskip("submitit")
    bin_dir, kept = tmp_path / "bin", tmp_path / "sbatch_scripts"
    bin_dir.mkdir()
    kept.mkdir()
    script = bin_dir / "sbatch"
    script.write_text(f"#!/bin/sh\nn=$(ls {kept} | wc -l)\ncp \"$1\" {kept}/$n.sh\necho \"Submitted batch job $((100 + n))\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit looks for it to know it is on a cluster
    (bin_dir / "srun").chmod(script.stat().st_mode)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return kept


def test_slurm_submits_one_array_per_distinct_resources(tmp_path, text_corpus, fake_sbatch):
    g = grid(text_corpus, resources={"partition": "gpu", "gpus": 1, "cpus": 4, "mem": "16G", "time": "2:00:00",
                                     "extra": {"exclusive": True}},
             axes=[{"name": "d", "values": {"a": {"sublora.seed": 0}, "b": {"sublora.seed": 1},
                                            "c": {"sublora.seed": 2, "resources.gpus": 2, "resources.time": 600}}}],
             launchers={"slurm": {"setup": ["module load cuda"]}})
    launcher = make_launcher("slurm", g, jobs=2)
    sweep = Sweep(g, tmp_path / "out", launcher=launcher)
    assert sweep.threads == 4  # the grid's cpus per point
    tasks = [sweep.task(ps) for ps in sweep.points.values()]
    jobs = launcher._submit(launcher._executor(launcher.folder(sweep.out)), tasks)
    assert [t.name for t, _ in jobs] == ["a", "b", "c"]
    assert [j.job_id for _, j in jobs] == ["100_0", "100_1", "101"]  # a, b share an array; c is a job of its own
    first, second = (p.read_text() for p in sorted(fake_sbatch.iterdir()))
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=4",
                 "#SBATCH --mem=16GB", "#SBATCH --time=120", "#SBATCH --array=0-1%2", "#SBATCH --exclusive",
                 "module load cuda", "#SBATCH --job-name=sublora-out"):
        assert line in first, (line, first)
    assert "#SBATCH --gpus-per-node=2" in second and "#SBATCH --time=600" in second
    assert "--array" not in second


def test_slurm_without_submitit_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(PluginLoadError, match="needs submitit") as info:
        make_launcher("slurm")
    assert "sublora-cli[slurm]" in info.value.hint
    assert make_launcher("local").jobs == 1  # the other launcher is unaffected


def test_slurm_says_when_this_machine_cannot_submit(tmp_path, text_corpus, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun, no sbatch
    launcher = make_launcher("slurm", grid(text_corpus))
    with pytest.raises(ConfigError, match="cannot submit from here.*srun") as info:
        launcher._executor(tmp_path / "sub")
    assert "executor: local" in info.value.hint


def test_slurm_refuses_points_without_a_time_limit(tmp_path, text_corpus):
    pytest.importorskip("submitit")
    launcher = make_launcher("slurm", grid(text_corpus))
    sweep = Sweep(grid(text_corpus), tmp_path / "out", launcher=launcher)
    with pytest.raises(ConfigError, match="needs a time limit for every point; none for a, b") as info:
        launcher.launch([sweep.task(ps) for ps in sweep.points.values()], lambda *a: None, lambda *a: None)
    assert "resources: {time:" in info.value.hint


def test_a_lock_left_on_another_node_by_a_dead_job_is_removed_before_resubmitting(tmp_path, text_corpus):
    pytest.importorskip("submitit")
    launcher = make_launcher("slurm", grid(text_corpus))
    sweep = Sweep(grid(text_corpus), tmp_path / "out", launcher=launcher)
    a, b = (sweep.task(ps) for ps in sweep.points.values())
    for task, host, pid in ((a, "node-17", 12345), (b, socket.gethostname(), os.getpid())):
        run = tmp_path / "out" / task.name
        run.mkdir(parents=True)
        (run / ".lock").write_text(json.dumps({"pid": pid, "host": host, "command": "sublora run"}))
    for task in (a, b):
        launcher._clear_lost_lock(task)
    assert not (tmp_path / "out" / "a" / ".lock").exists()  # another node's: its job is gone
    assert (tmp_path / "out" / "b" / ".lock").exists()  # this host's live process: left to the run lock


class FakeJob:
    def __init__(self, job_id):
        self.job_id, self.cancelled = job_id, False

    def done(self):
        return self.cancelled

    def result(self):
        raise RuntimeError("cancelled")

    def cancel(self, check=True):
        self.cancelled = True

    state = "RUNNING"


class FakeExecutor:
    """submitit's executor surface the launcher uses; jobs run until cancelled."""

    def __init__(self):
        self.jobs, self.parameters = [], []

    def update_parameters(self, **params):
        self.parameters.append(params)

    def batch(self):
        import contextlib

        return contextlib.nullcontext()

    def submit(self, fn):
        self.jobs.append(FakeJob(str(len(self.jobs))))
        return self.jobs[-1]


@pytest.mark.parametrize("cancel", [True, False])
def test_stopping_a_slurm_sweep_cancels_its_jobs_or_leaves_them_running_when_told(tmp_path, text_corpus, cancel):
    pytest.importorskip("submitit")
    import threading

    g = grid(text_corpus, resources={"time": 5})
    launcher = make_launcher("slurm", g)
    launcher.config = launcher.config.model_copy(update={"cancel_on_stop": cancel, "poll_seconds": 0.05})
    fake = FakeExecutor()
    launcher._executor = lambda folder: fake
    sweep = Sweep(g, tmp_path / "out", launcher=launcher)
    ended = []
    timer = threading.Timer(0.5, launcher.stop)
    timer.start()
    launcher.launch([sweep.task(ps) for ps in sweep.points.values()], lambda t, j, waiting=False: None,
                    lambda t, code, error: ended.append((t.name, code, error)))
    assert [j.cancelled for j in fake.jobs] == [cancel, cancel]
    assert [name for name, _, _ in ended] == ["a", "b"] and all(code is None for _, code, _ in ended)
    if not cancel:
        assert "left running (cancel_on_stop: false)" in ended[0][2]


class ScriptedJob(FakeJob):
    """A job whose scheduler state is the next of ``states`` at each read; done after 'COMPLETED' is read."""

    def __init__(self, job_id, states):
        super().__init__(job_id)
        self.states, self.last = list(states), None

    @property
    def state(self):
        self.last = self.states.pop(0) if self.states else self.last
        return self.last

    def done(self):
        return self.last == "COMPLETED"

    def result(self):
        return 0


def test_a_slurm_point_is_submitted_until_its_job_runs_and_again_when_it_is_requeued(tmp_path, text_corpus):
    """Waiting in the queue, running, requeued (preempted) and running again: the sweep hears each change once."""
    pytest.importorskip("submitit")
    g = grid(text_corpus, resources={"time": 5}, axes=[{"name": "p", "values": {"a": {"sublora.seed": 0}}}])
    launcher = make_launcher("slurm", g)
    launcher.config = launcher.config.model_copy(update={"poll_seconds": 0.01})
    fake = FakeExecutor()
    fake.submit = lambda fn: fake.jobs.append(ScriptedJob("7", ["PENDING", "PENDING", "RUNNING", "RUNNING", "PENDING",
                                                               "RUNNING", "COMPLETED"])) or fake.jobs[-1]
    launcher._executor = lambda folder: fake
    sweep = Sweep(g, tmp_path / "out", launcher=launcher)
    heard = []

    def started(task, job, *, waiting=False):
        sweep._started(task, job, waiting=waiting)
        ps = sweep.points[task.name]
        heard.append((job, waiting, ps.state, ps.started is not None))

    launcher.launch([sweep.task(ps) for ps in sweep.points.values()], started,
                    lambda t, code, error: heard.append(("end", code)))
    assert heard == [("7", True, "submitted", False), ("7", False, "running", True), ("7", True, "submitted", True),
                     ("7", False, "running", True), ("end", 0)]


def test_the_sweep_shows_a_waiting_job_as_submitted_with_its_id_and_times_a_requeued_one_from_its_first_start(
        tmp_path, text_corpus):
    from rich.console import Console

    from sublora.cli.commands.sweep import render

    g = grid(text_corpus, resources={"time": 5})
    sweep = Sweep(g, tmp_path / "out", launcher=make_launcher("slurm", g))
    task = sweep.task(sweep.points["a"])
    sweep._started(task, "41_0", waiting=True)
    assert sweep.points["a"].state == "submitted" and sweep.points["a"].started is None
    console = Console(width=200, record=True)
    console.print(render(sweep))
    assert "submitted (job 41_0)" in console.export_text()
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["points"]["a"]["state"] == "submitted"
    sweep._started(task, "41_0")
    first = sweep.points["a"].started
    assert sweep.points["a"].state == "running" and first is not None
    sweep._started(task, "41_0", waiting=True)  # preempted and requeued
    sweep._started(task, "41_0")
    assert sweep.points["a"].started == first
    sweep._started(sweep.task(sweep.points["b"]), "5")  # a launcher that never waits: running at once
    assert sweep.points["b"].state == "running"


def test_a_point_job_runs_the_command_into_the_log_and_requeues_itself_appending(tmp_path):
    pytest.importorskip("submitit")
    from sublora.cli.launchers.slurm import PointJob

    log = tmp_path / "logs" / "p.log"
    job = PointJob(("sh", "-c", "echo $GREETING; exit 3"), {"GREETING": "hello"}, str(log))
    assert job() == 3 and log.read_text() == "hello\n"
    again = job.checkpoint()
    assert again.function.append and again.function.command == job.command  # a requeue appends to the log
    assert job() == 3 and log.read_text() == "hello\n"  # a fresh attempt (a new sweep) starts the log again


# ------------------------------------------------------------------------------------------------ the sweep


class LosingLauncher(Launcher):
    """Starts every task and loses it, as a scheduler reports a job killed on its node."""

    def launch(self, tasks, started, finished):
        for task in tasks:
            started(task, f"job-{task.name}")
            finished(task, None, "job 7 did not finish: state CANCELLED")

    def stop(self):
        pass


def test_a_lost_job_is_recorded_with_its_id_and_queued_again_by_the_next_sweep(tmp_path, text_corpus):
    g = grid(text_corpus)
    sweep = Sweep(g, tmp_path / "out", launcher=LosingLauncher(LauncherConfig(jobs=1)))
    states = sweep.run()
    assert {ps.state for ps in states} == {"failed"}
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())["points"]["a"]
    assert saved["job"] == "job-a" and "state CANCELLED" in saved["error"] and "resumes" in saved["error"]
    again = Sweep(g, tmp_path / "out")
    assert [ps.point.name for ps in again.plan()] == ["a", "b"]


# ------------------------------------------------------------------------------------------------ end to end


def sublora(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "sublora.cli.app", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def last_step(run: Path) -> int:
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return -1
    steps = [json.loads(ln).get("step", -1) for ln in lines if ln.startswith("{") and '"train"' in ln]
    return max(steps, default=-1)


@pytest.mark.slow
def test_a_killed_job_is_resumed_by_rerunning_the_sweep(tmp_path, text_corpus):
    """submitit's local executor runs the point as a job; its training process is killed (SIGKILL, as the
    out-of-memory killer or a dead node would) mid-run; the sweep records the loss; the same command again
    resumes the point from its last checkpoint and certifies it."""
    pytest.importorskip("submitit")
    g = grid(text_corpus, axes=[{"name": "p", "values": {"a": {"sublora.seed": 0}}}],
             launchers={"slurm": {"executor": "local", "poll_seconds": 0.2}},
             resources={"time": 10})
    data = g.model_dump(mode="json", exclude_defaults=True)
    data["base"]["train"].update(max_steps=150, log_interval=1, checkpoint_interval=10, eval_interval=100,
                                 batch_size=2)
    data["base"]["bound"].update(levels_grid=[], qat_steps=0, estimators=["subsampling"], search_blocks=8)
    path, out = tmp_path / "grid.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(data))
    proc = sublora("sweep", path, "--out", out, "--launcher", "slurm")
    run, deadline = out / "a", time.time() + 120
    while last_step(run) < 25 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    holder = json.loads((run / ".lock").read_text())
    assert "run" in holder["command"] and last_step(run) < 150, "the point finished before it could be killed"
    os.kill(holder["pid"], signal.SIGKILL)
    killed_at = last_step(run)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    point = json.loads((out / "sweep.json").read_text())["points"]["a"]
    assert point["state"] == "failed" and point["launcher"] == "slurm" and point["job"], point
    assert "exit -9" in point["error"], point["error"]

    proc = sublora("sweep", path, "--out", out, "--launcher", "slurm")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stdout + stderr
    assert json.loads((out / "sweep.json").read_text())["points"]["a"]["state"] == "done"
    assert json.loads((run / "manifest.json").read_text())["status"] == "verified"
    log = (out / "logs" / "a.log").read_text()
    assert "resum" in log.lower(), log[-2000:]
    assert killed_at >= 20
