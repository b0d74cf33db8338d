"""The ``local`` launcher: each point a `sublora run` process on this machine, ``jobs`` at once.

Threads: each point gets CPU count / jobs torch threads by default, so N points at once do not
oversubscribe the cores. Ctrl-C terminates the running processes (`sublora run` commits its last
checkpoint on SIGTERM) and starts no more.
"""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from sublora.core.launcher import Finished, Launcher, Resources, Started, Task


class LocalLauncher(Launcher):
    def __init__(self, config):
        super().__init__(config)
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._stopping = False

    @property
    def jobs(self) -> int:
        return self.config.jobs or 1

    def default_threads(self, resources: Resources) -> int:
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def describe(self) -> str:
        return f"local, {self.jobs} at once"

    def launch(self, tasks: list[Task], started: Started, finished: Finished) -> None:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for future in [pool.submit(self._run, task, started, finished) for task in tasks]:
                future.result()

    def _run(self, task: Task, started: Started, finished: Finished) -> None:
        with self._lock:
            if self._stopping:
                return
        env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
        env.update(task.env)
        task.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(task.log, "w") as fh:
                with self._lock:
                    if self._stopping:
                        return
                    proc = subprocess.Popen(list(task.command), stdout=fh, stderr=subprocess.STDOUT, env=env)
                    self._procs[task.name] = proc
                started(task, str(proc.pid))
                code = proc.wait()
        except OSError as exc:  # the interpreter or the log cannot be opened: this point fails, not the sweep
            started(task, None)
            finished(task, None, f"{type(exc).__name__}: {exc}")
            return
        finally:
            with self._lock:
                self._procs.pop(task.name, None)
        finished(task, code, None)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            procs = list(self._procs.values())
        for proc in procs:
            proc.terminate()
