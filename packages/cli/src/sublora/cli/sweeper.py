"""Run every point of a grid: `sublora run` per point in a process of its own, resumable.

Each point runs in its own process (``python -m sublora.cli.app run --out DIR/NAME
--config DIR/configs/NAME.yaml``), so one failing or crashing point never takes the
others down. Where that process runs is the launcher's business (``sublora.core.launcher``):
``local`` runs ``--jobs N`` at once on this machine, each with ``threads`` torch threads
(default: the CPU count divided by N, so the machine is not oversubscribed); ``slurm`` submits
each point as a job-array element with its grid ``resources`` (threads: their ``cpus``).

State lives in the run directories themselves (a point is finished when its
certificate exists; an interrupted one resumes from its last checkpoint) and in
``DIR/sweep.json`` (grid, thread count, each point's state, error, timings),
rewritten atomically on every change. Logs: ``DIR/logs/NAME.log``.

A point whose run was made with other settings than the grid now gives it is never
skipped or resumed as if nothing changed: the sweep refuses, naming the points and
fields, unless told to redo them (``rerun_changed``); a point that failed is redone
with its current settings without being told. Redone runs are moved to DIR/.replaced/.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sublora.core.errors import RunDirError, SubloraError
from sublora.core.launcher import Launcher, Task
from sublora.core.manifest import describe_diff, read_json, write_json
from sublora.core.rundir import Changes, RunDir
from sublora.core.runlock import run_lock
from sublora.core.sweep import Grid, Point, run_state

FINISHED = ("bounded", "verified")


@dataclass
class PointState:
    point: Point
    state: str = "pending"  # pending | queued | submitted | running | done | failed | skipped | interrupted
    error: str | None = None
    seconds: float | None = None
    started: float | None = None
    rerun: bool = False  # redo the stages its changed settings affect (`sublora run --rerun-changed`)
    job: str | None = None  # the launcher's id of its last job (pid, or SLURM job id)
    launcher: str | None = None  # the launcher that ran it last

    def to_json(self) -> dict[str, Any]:
        return {"labels": self.point.labels, "overrides": self.point.overrides, "state": self.state,
                "error": self.error, "seconds": self.seconds, "launcher": self.launcher, "job": self.job}


@dataclass
class Sweep:
    grid: Grid
    out: Path
    jobs: int | None = None
    threads: int | None = None
    rerun_changed: bool = False
    launcher: Launcher | None = None  # default: the local launcher with ``jobs``
    points: dict[str, PointState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.launcher is None:
            self.launcher = make_launcher("local", self.grid, jobs=self.jobs)
        self.jobs = self.launcher.jobs
        previous = read_json(self.state_file) if self.state_file.is_file() else {}
        self.previous_states = {name: p.get("state") for name, p in previous.get("points", {}).items()}
        self.previous_jobs = {name: (p.get("launcher"), p.get("job")) for name, p in previous.get("points", {}).items()}
        if self.threads is None:
            self.threads = previous.get("threads") or self.launcher.default_threads(self.grid.resources)
        # every point's config, built now so a typo fails before any point runs; the grid may set its own threads
        self.configs = {p.name: self.grid.config(p, defaults={"train.threads": self.threads})
                        for p in self.grid.points()}
        for point in self.grid.points():
            self.points[point.name] = PointState(point)

    @property
    def state_file(self) -> Path:
        return self.out / "sweep.json"

    def config_of(self, point: Point):
        return self.configs[point.name]

    def changes(self, point: Point) -> Changes | None:
        """How the grid's config of ``point`` differs from its run's settings; None if it has no run (or no
        readable one: its own `sublora run` reports that)."""
        rd = RunDir(self.out / point.name)
        if run_state(rd.root) == "pending":
            return None
        try:
            return rd.changes(self.config_of(point))
        except SubloraError:
            return None

    def plan(self) -> list[PointState]:
        """Skip finished points, queue the others; return those to run, in grid order.

        A point run with other settings (training ones, or bound ones of its certificate) is redone when
        ``rerun_changed`` is set or it failed last time; otherwise the whole sweep refuses, naming them.
        """
        todo, refused = [], []
        for name, ps in self.points.items():
            state = run_state(self.out / name)
            changes = self.changes(ps.point)
            redo = changes is not None and bool(changes.training or (state in FINISHED and changes.bound))
            ps.rerun = redo
            if redo and not (self.rerun_changed or self.previous_states.get(name) == "failed"):
                refused.append(f"{name} ({state}): {describe_diff(changes.all)}")
            elif state in FINISHED and not redo:
                ps.state = "skipped"
            else:
                ps.state = "queued"
                todo.append(ps)
        if refused:
            raise RunDirError(
                f"{len(refused)} point(s) in {self.out} were run with other settings than the grid now gives them:\n  "
                + "\n  ".join(refused),
                hint=f"Pass --rerun-changed to redo them (a changed bound.* setting recomputes the certificate, a "
                f"changed training setting retrains; old runs are moved to {self.out / '.replaced'}), or restore "
                "the grid's settings.")
        self.save()
        return todo

    def save(self) -> None:
        with self._lock:
            data = {"format": "sublora-sweep/1", "grid": self.grid.model_dump(mode="json"), "threads": self.threads,
                    "jobs": self.jobs, "launcher": self.launcher.config.spec, "conditions": self.grid.conditions, "replicates": self.grid.replicates,
                    "points": {name: ps.to_json() for name, ps in self.points.items()}}
            write_json(self.state_file, data)

    def task(self, ps: PointState) -> Task:
        """The point as a launcher task: its exact config written to DIR/configs/NAME.yaml, its command, log."""
        name = ps.point.name
        config_path = self.out / "configs" / f"{name}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(self.config_of(ps.point).to_dict(), sort_keys=False))
        cmd = [sys.executable, "-m", "sublora.cli.app", "run", "--out", str(self.out / name), "--config", str(config_path)]
        if ps.rerun:
            cmd.append("--rerun-changed")
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads), "COLUMNS": "160"}
        return Task(name, tuple(cmd), env, self.out / "logs" / f"{name}.log", self.grid.resources_of(ps.point))

    def _started(self, task: Task, job: str | None, *, waiting: bool = False) -> None:
        """The launcher started the point, or (``waiting``) submitted it to a scheduler that has not run it yet."""
        ps = self.points[task.name]
        if waiting:
            ps.state, ps.error = "submitted", None
        else:  # a requeued job keeps its first start
            requeued = ps.state == "submitted" and ps.started is not None
            ps.state, ps.error, ps.seconds = "running", None, None
            ps.started = ps.started if requeued else time.time()
        ps.job, ps.launcher = job, self.launcher.config.spec
        self.save()

    def _finished(self, task: Task, code: int | None, error: str | None) -> None:
        """What a point's end means is read from its run directory, whatever the launcher says."""
        ps = self.points[task.name]
        ps.seconds = round(time.time() - ps.started, 1) if ps.started else None
        if self._stopping:
            ps.state = "interrupted"
        elif code == 0 and run_state(self.out / task.name) in FINISHED:
            ps.state = "done"
        elif code is None:
            ps.state, ps.error = "failed", f"{error or 'lost by the launcher'} (rerun the sweep: it resumes " \
                f"from the last checkpoint)"
        else:
            ps.state, ps.error = "failed", error_line(task.log, code)
        self.save()

    def run(self, on_change=None) -> list[PointState]:
        """Run every unfinished point through the launcher; a failing point is recorded, the others go on."""
        with run_lock(self.out):
            return self._run(on_change)

    def _run(self, on_change=None) -> list[PointState]:
        todo = self.prepare_data(self.plan())
        tasks = [self.task(ps) for ps in todo]
        spec = self.launcher.config.spec
        if hasattr(self.launcher, "previous_jobs"):  # a scheduler's jobs may outlive the sweep that submitted them
            self.launcher.previous_jobs = {n: job for n, (by, job) in self.previous_jobs.items() if by == spec and job}
        failure: list[BaseException] = []

        def launch() -> None:
            try:
                self.launcher.launch(tasks, self._started, self._finished)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
                failure.append(exc)

        worker = threading.Thread(target=launch, name="sublora-launcher", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                if on_change:
                    on_change(self)
                worker.join(0.5)
        except KeyboardInterrupt:
            self.stop()
            worker.join()
            raise
        if failure:
            raise failure[0]
        if on_change:
            on_change(self)
        return list(self.points.values())

    def prepare_data(self, todo: list[PointState]) -> list[PointState]:
        """Prepare each distinct data set once, here, so parallel points never race to write it. A data set
        that cannot be prepared fails the points that need it (recorded, with the error); the rest go on."""
        from sublora.core.data import ensure_prepared
        from sublora.core.errors import SubloraError

        errors: dict[str, str | None] = {}
        for ps in todo:
            key = self.config_of(ps.point).data.model_dump_json()
            if key not in errors:
                try:
                    ensure_prepared(self.config_of(ps.point).data)
                    errors[key] = None
                except SubloraError as exc:
                    errors[key] = f"error: preparing its data: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
            if errors[key] is not None:
                ps.state, ps.error = "failed", errors[key]
        if any(errors.values()):
            self.save()
        return [ps for ps in todo if ps.state != "failed"]

    def stop(self) -> None:
        """Interrupt: start no more points, stop running ones (they resume from their checkpoints)."""
        self._stopping = True
        self.launcher.stop()
        for ps in self.points.values():
            if ps.state == "queued":
                ps.state = "pending"
        self.save()


def make_launcher(spec: str, grid: Grid | None = None, jobs: int | None = None) -> Launcher:
    """Build a launcher from its spec, its options in the grid's ``launchers:`` block and ``--jobs``."""
    from sublora.core.registry import registry

    options = dict((grid.launchers if grid else {}).get(spec.split(":")[0].strip().lower(), {}))
    if jobs is not None:
        options["jobs"] = jobs
    return registry("launcher").config(spec, options).build()


def error_line(log: Path, code: int) -> str:
    """The error the point's process reported (its 'error:' line), else its last line, with the exit code."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()] if log.is_file() else []
    for ln in lines:
        if ln.startswith(("error:", "internal error:")):
            return f"{ln} (exit {code})"
    return f"{lines[-1] if lines else 'no output'} (exit {code})"


def progress_of(run_dir: Path) -> dict[str, Any]:
    """Latest step / losses / headline bound of a run directory, read from its files (cheap)."""
    info: dict[str, Any] = {}
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        with open(metrics, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            start = max(0, fh.tell() - 4096)
            fh.seek(start)
            tail = fh.read().decode(errors="replace").splitlines()[1 if start else 0:]  # skip a cut first line
        for line in reversed(tail):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "train" and "step" not in info:
                info.update(step=event["step"], loss_bpt=event.get("bpt"))
            if event.get("event") == "eval" and "val_bpt" not in info:
                info["val_bpt"] = event.get("val_bpt")
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        try:
            m = read_json(manifest)
            info["max_steps"] = m["config"]["train"]["max_steps"]
            info["status"] = m.get("status")
            info["best"] = m.get("certificate", {}).get("best")
        except (ValueError, KeyError):
            pass
    return info
