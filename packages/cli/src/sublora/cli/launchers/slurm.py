"""The ``slurm`` launcher: each point a job-array element, submitted through submitit.

Points that ask for the same ``resources`` share one job array (SLURM arrays share one set of
sbatch options), limited to ``jobs`` running elements at once (``%N``). Each element runs the
point's `sublora run` command in a child process (``PointJob``), so the job's code is the same
as a local point's and its output goes to the sweep's ``logs/NAME.log``.

What keeps a point's work when its job does not end well:
- time limit or preemption: submitit signals the job first; ``PointJob.checkpoint`` stops the run
  (SIGTERM: it commits its last checkpoint) and requeues the same command, which resumes
  (``max_requeue`` times);
- killed outright (scancel, out of memory, a node that died): the point is reported lost; its run
  directory keeps its last checkpoint, and rerunning the sweep resubmits it, resuming there. A run
  lock left on another node by a job that no longer exists is removed before resubmitting;
- a point whose job from an earlier sweep is still queued or running is watched, not submitted
  twice.

``executor: local`` runs the same jobs through submitit's LocalExecutor on this machine: the tests
use it, and it is a way to check a grid before sending it to a cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sublora.core.errors import ConfigError, PluginLoadError
from sublora.core.launcher import Finished, Launcher, Resources, Started, Task

#: job states of SLURM in which the job still holds (or will hold) its point
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
          "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "UNKNOWN"}
#: states of ACTIVE in which the job waits for the scheduler (the sweep shows the point "submitted", not
#: "running"); UNKNOWN is a job sacct does not list yet. Any other state ran (or runs) the point.
WAITING = ACTIVE - {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"}
LOCAL_DEFAULT_MINUTES = 7 * 24 * 60  # submitit's local default is 2 minutes


def _submitit():
    try:
        import submitit
    except ImportError as exc:
        raise PluginLoadError("The slurm launcher needs submitit, which is not installed.",
                              hint="pip install 'sublora-cli[slurm]' (or pip install submitit).") from exc
    return submitit


class SlurmLauncher(Launcher):
    def __init__(self, config):
        super().__init__(config)
        self._submitit = _submitit()
        self._stopping = False
        self._running: dict[Any, Task] = {}
        self._runs: dict[Any, bool] = {}  # job -> whether it was last reported running (else waiting)
        #: point name -> job id of an earlier sweep (sweep.json); set by the sweep before launch
        self.previous_jobs: dict[str, str] = {}

    def describe(self) -> str:
        if self.config.executor == "local":
            return f"submitit local executor, {self.config.jobs or 1} at once"
        return f"slurm, {self.config.jobs or 'all'} at once"

    def folder(self, sweep_dir: Path) -> Path:
        return Path(self.config.folder) if self.config.folder else sweep_dir / ".submitit"

    # ------------------------------------------------------------------------------------------ launching

    def launch(self, tasks: list[Task], started: Started, finished: Finished) -> None:
        if not tasks:
            return
        self._check_time_limits(tasks)
        folder = self.folder(tasks[0].log.parent.parent)
        executor = self._executor(folder)
        queue: list[Task] = []
        for task in tasks:  # a job of an earlier sweep still holding its point is watched, not submitted again
            job = self._still_active(folder, task)
            if job is not None:
                self._running[job] = task
                self._report(job, task, started)
            else:
                self._clear_lost_lock(task)
                queue.append(task)
        # SLURM throttles with %N itself; on this machine, like the local launcher: jobs at once, default 1
        limit = (self.config.jobs or 1) if self.config.executor == "local" else None
        while (queue or self._running) and not self._stopping:
            room = len(queue) if limit is None else max(0, limit - len(self._running))
            if room:
                batch, queue = queue[:room], queue[room:]
                for task, job in self._submit(executor, batch):
                    self._running[job] = task
                    self._report(job, task, started)
            self._watch(started)
            self._reap(finished)
            if self._running or queue:
                time.sleep(self.config.poll_seconds if self.config.executor == "slurm" else 0.5)
        if self._stopping and self.config.cancel_on_stop:
            self._reap(finished, wait=True)  # cancelled: each ends within seconds
        elif self._stopping:  # left running on purpose: the next sweep watches them (their ids are in sweep.json)
            for job, task in list(self._running.items()):
                self._running.pop(job)
                finished(task, None, f"job {job.job_id} left running (cancel_on_stop: false)")

    def _executor(self, folder: Path):
        kwargs = {f"{self.config.executor}_max_num_timeout": self.config.max_requeue}
        if self.config.python:
            kwargs[f"{self.config.executor}_python"] = self.config.python
        try:
            return self._submitit.AutoExecutor(folder=folder, cluster=self.config.executor, **kwargs)
        except RuntimeError as exc:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
            raise ConfigError(f"The slurm launcher cannot submit from here: {exc}",
                              hint="Run the sweep on a SLURM login node, or try the grid on this machine with "
                              "`launchers: {slurm: {executor: local}}` in the grid (or --launcher local).") from exc

    def _submit(self, executor, tasks: list[Task]) -> list[tuple[Task, Any]]:
        """One array per distinct resources; returns (task, job) in submission order."""
        groups: dict[str, list[Task]] = {}
        for task in tasks:
            groups.setdefault(task.resources.model_dump_json(), []).append(task)
        out = []
        for group in groups.values():
            executor.update_parameters(**self.parameters(group[0].resources, name=f"sublora-{group[0].log.parent.parent.name}"))
            with executor.batch():
                jobs = [executor.submit(PointJob(t.command, t.env, str(t.log))) for t in group]
            out.extend(zip(group, jobs))
        return out

    def parameters(self, resources: Resources, name: str = "sublora") -> dict[str, Any]:
        """submitit parameters of one array: the point's resources plus the launcher's options."""
        ex = self.config.executor
        params: dict[str, Any] = {"name": name, "cpus_per_task": resources.cpus,
                                  "timeout_min": resources.minutes or LOCAL_DEFAULT_MINUTES}
        if resources.gpus:
            params["gpus_per_node"] = resources.gpus
        if resources.mem_gb is not None:
            params["mem_gb"] = resources.mem_gb
        if self.config.setup:
            params[f"{ex}_setup"] = list(self.config.setup)
        if ex == "slurm":
            for key in ("partition", "constraint", "account", "qos"):
                if getattr(resources, key):
                    params[f"slurm_{key}"] = getattr(resources, key)
            if resources.extra:
                params["slurm_additional_parameters"] = dict(resources.extra)
            if self.config.jobs:
                params["slurm_array_parallelism"] = self.config.jobs
        return params

    def _check_time_limits(self, tasks: list[Task]) -> None:
        if self.config.executor != "slurm":
            return
        missing = [t.name for t in tasks if t.resources.time is None]
        if missing:
            raise ConfigError(
                f"The slurm launcher needs a time limit for every point; none for {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}.",
                hint="Add `resources: {time: '24:00:00'}` to the grid (or resources.time to an axis); submitit "
                "would otherwise ask SLURM for 5 minutes.")

    # ------------------------------------------------------------------------------------------ watching

    def _report(self, job, task: Task, started: Started, runs: bool | None = None) -> None:
        """Tell the sweep whether ``job`` waits in the scheduler's queue or has started (a state not read: waits)."""
        runs = _has_started(job) if runs is None else runs
        self._runs[job] = runs
        started(task, str(job.job_id), waiting=not runs)

    def _watch(self, started: Started) -> None:
        """Report each unfinished job whose state changed between waiting and running (started, requeued)."""
        for job, task in list(self._running.items()):
            if job.done():
                continue
            runs = _has_started(job)
            if runs != self._runs.get(job):
                self._report(job, task, started, runs)

    def _reap(self, finished: Finished, wait: bool = False) -> None:
        for job, task in list(self._running.items()):
            if not (job.done() or wait):
                continue
            self._running.pop(job)
            self._runs.pop(job, None)
            try:
                code = job.result()
            except Exception as exc:  # noqa: BLE001 - killed, cancelled, node failure: the point is lost, not the sweep
                finished(task, None, f"job {job.job_id} did not finish: {_reason(job, exc)}")
                continue
            finished(task, int(code), None)

    def _still_active(self, folder: Path, task: Task):
        """The job of an earlier sweep still queued or running for this point, or None."""
        job_id = self.previous_jobs.get(task.name)
        if not job_id or self.config.executor != "slurm":
            return None  # local jobs die with their sweep; a stale local lock is detected by the run lock itself
        job = self._submitit.SlurmJob(folder=folder, job_id=job_id)
        state = _state(job)  # None (sacct unavailable): assume it is gone rather than wait forever
        return job if state in ACTIVE else None

    def _clear_lost_lock(self, task: Task) -> None:
        """Remove RUN/.lock left on another node by a job of this point that no longer exists.

        The sweep holds its own lock, and this point has no active job, so nothing else can be writing
        the run; a lock on this host is checked (and replaced if stale) by the run lock itself.
        """
        from sublora.core.runlock import LOCK_NAME, lock_holder

        run_dir = run_dir_of(task)
        if run_dir is None or self.config.executor != "slurm":
            return
        holder = lock_holder(run_dir)
        if holder is not None and holder.get("host") != _hostname():
            (run_dir / LOCK_NAME).unlink(missing_ok=True)

    def stop(self) -> None:
        self._stopping = True
        if self.config.cancel_on_stop:
            for job in list(self._running):
                try:
                    job.cancel(check=False)
                except Exception:  # noqa: BLE001 - best effort; the next sweep watches what still runs
                    pass


class PointJob:
    """What a job runs: the point's `sublora run` command, output to its log, signals passed on to it.

    Picklable (submitit pickles it to the job folder). On a time limit or preemption submitit calls
    ``checkpoint``: the run is told to stop (it commits its checkpoint) and the same command is
    requeued; it resumes.
    """

    def __init__(self, command: tuple[str, ...], env: dict[str, str], log: str, append: bool = False):
        self.command, self.env, self.log, self.append = tuple(command), dict(env), log, append
        self._proc: subprocess.Popen | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_proc"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._proc = None

    def __call__(self) -> int:
        env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
        env.update(self.env)
        command = list(self.command)
        if command[1:3] == ["-m", "sublora.cli.app"]:  # the sweep's python -m ...: the node's interpreter runs it
            command[0] = sys.executable
        Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._forward)
        try:
            with open(self.log, "a" if self.append else "w") as fh:
                self._proc = subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                              preexec_fn=_die_with_parent if sys.platform == "linux" else None)
                try:
                    return self._proc.wait()
                except KeyboardInterrupt:  # the job is being cancelled: let the run commit its checkpoint
                    self._stop_child()
                    raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _forward(self, signum, frame) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def _stop_child(self, timeout: float = 60.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit's hook on time limit / preemption: stop the run cleanly, then requeue it (it resumes)."""
        from submitit.helpers import DelayedSubmission

        self._stop_child()
        return DelayedSubmission(PointJob(self.command, self.env, self.log, append=True))


def run_dir_of(task: Task) -> Path | None:
    """The run directory a task's `sublora run --out DIR` writes."""
    cmd = list(task.command)
    return Path(cmd[cmd.index("--out") + 1]) if "--out" in cmd else None


def _state(job) -> str | None:
    """The job's scheduler state ('RUNNING', 'PENDING', ... ; submitit's local jobs: 'RUNNING', 'FINISHED'),
    None when it cannot be read."""
    try:
        state = str(job.state).split()
    except Exception:  # noqa: BLE001 - sacct unavailable or the job unknown to it
        return None
    return state[0].upper() if state else None


def _has_started(job) -> bool:
    state = _state(job)
    return state is not None and state not in WAITING


def _reason(job, exc: Exception) -> str:
    try:
        state = job.state
    except Exception:  # noqa: BLE001
        state = "?"
    text = str(exc).strip().splitlines()
    first = next((ln for ln in text if ln.strip()), type(exc).__name__)
    return f"state {state}: {type(exc).__name__}: {first[:200]}"


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the job's process dies (so a killed job never leaves its run going)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux glibc: the scheduler's own cleanup still applies
        pass
