"""Run every point of a grid: `sublora run` per point in a subprocess, several at once, resumable.

Each point runs in its own process (``python -m sublora.cli.app run --out DIR/NAME
--config DIR/configs/NAME.yaml``), so one failing or crashing point never takes the
others down, and ``--jobs N`` runs N at once, each with ``threads`` torch threads
(default: the CPU count divided by N, so the machine is not oversubscribed).

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
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sublora.core.errors import RunDirError, SubloraError
from sublora.core.manifest import describe_diff, read_json, write_json
from sublora.core.rundir import Changes, RunDir
from sublora.core.runlock import run_lock
from sublora.core.sweep import Grid, Point, run_state

FINISHED = ("bounded", "verified")


@dataclass
class PointState:
    point: Point
    state: str = "pending"  # pending | queued | running | done | failed | skipped | interrupted
    error: str | None = None
    seconds: float | None = None
    started: float | None = None
    rerun: bool = False  # redo the stages its changed settings affect (`sublora run --rerun-changed`)

    def to_json(self) -> dict[str, Any]:
        return {"labels": self.point.labels, "overrides": self.point.overrides, "state": self.state,
                "error": self.error, "seconds": self.seconds}


@dataclass
class Sweep:
    grid: Grid
    out: Path
    jobs: int = 1
    threads: int | None = None
    rerun_changed: bool = False
    points: dict[str, PointState] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _stopping: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        previous = read_json(self.state_file) if self.state_file.is_file() else {}
        self.previous_states = {name: p.get("state") for name, p in previous.get("points", {}).items()}
        if self.threads is None:
            self.threads = previous.get("threads") or max(1, (os.cpu_count() or 1) // max(1, self.jobs))
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
                    "jobs": self.jobs, "conditions": self.grid.conditions, "replicates": self.grid.replicates,
                    "points": {name: ps.to_json() for name, ps in self.points.items()}}
            write_json(self.state_file, data)

    def run_point(self, ps: PointState) -> None:
        """Run one point to its certificate; any failure is recorded on the point, never raised."""
        if self._stopping:
            return
        try:
            self._run_point(ps)
        except Exception as exc:  # noqa: BLE001 - a failing point must not stop the others
            ps.state, ps.error = "failed", f"{type(exc).__name__}: {exc}"
            self.save()

    def _run_point(self, ps: PointState) -> None:
        name = ps.point.name
        config_path = self.out / "configs" / f"{name}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(self.config_of(ps.point).to_dict(), sort_keys=False))
        log = self.out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
        env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads), COLUMNS="160")
        cmd = [sys.executable, "-m", "sublora.cli.app", "run", "--out", str(self.out / name), "--config", str(config_path)]
        if ps.rerun:
            cmd.append("--rerun-changed")
        ps.state, ps.started, ps.error = "running", time.time(), None
        self.save()
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
            self._procs[name] = proc
            code = proc.wait()
            self._procs.pop(name, None)
        ps.seconds = round(time.time() - ps.started, 1)
        if self._stopping:
            ps.state = "interrupted"
        elif code == 0 and run_state(self.out / name) in FINISHED:
            ps.state = "done"
        else:
            ps.state, ps.error = "failed", error_line(log, code)
        self.save()

    def run(self, on_change=None) -> list[PointState]:
        """Run every unfinished point (``jobs`` at once); a failing point is recorded, the others go on."""
        with run_lock(self.out):
            return self._run(on_change)

    def _run(self, on_change=None) -> list[PointState]:
        todo = self.plan()
        self.prepare_data(todo)
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            futures = [pool.submit(self.run_point, ps) for ps in todo]
            try:
                while not all(f.done() for f in futures):
                    if on_change:
                        on_change(self)
                    time.sleep(0.5)
            except KeyboardInterrupt:
                self.stop()
                raise
        for f in futures:
            f.result()
        if on_change:
            on_change(self)
        return list(self.points.values())

    def prepare_data(self, todo: list[PointState]) -> None:
        """Prepare each distinct data set once, here, so parallel points never race to write it."""
        from sublora.core.data import ensure_prepared

        seen = set()
        for ps in todo:
            data = self.config_of(ps.point).data
            key = data.model_dump_json()
            if key not in seen:
                seen.add(key)
                ensure_prepared(data)

    def stop(self) -> None:
        """Interrupt: stop queued points, terminate running ones (they resume from their checkpoints)."""
        self._stopping = True
        for proc in list(self._procs.values()):
            proc.terminate()
        for ps in self.points.values():
            if ps.state == "queued":
                ps.state = "pending"
        self.save()


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
