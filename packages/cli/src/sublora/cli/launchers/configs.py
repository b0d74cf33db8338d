"""Options of the built-in launchers (cheap to import: no submitit, no torch; `sublora plugins` reads them)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from sublora.core.launcher import LauncherConfig


class LocalLauncherConfig(LauncherConfig):
    description: ClassVar[str] = ("Each point in its own `sublora run` process on this machine, `jobs` at once "
                                  "(default 1), each with CPU count / jobs torch threads.")
    implementation: ClassVar[str] = "sublora.cli.launchers.local:LocalLauncher"


class SlurmLauncherConfig(LauncherConfig):
    description: ClassVar[str] = ("Each point a SLURM job-array element through submitit (one array per distinct "
                                  "`resources`); `executor: local` runs the same jobs on this machine (tests).")
    implementation: ClassVar[str] = "sublora.cli.launchers.slurm:SlurmLauncher"

    executor: Literal["slurm", "local"] = Field(
        "slurm", description="submitit executor: 'slurm' submits with sbatch; 'local' runs the jobs here "
        "(submitit's LocalExecutor: the same job files, pickles and states, no cluster needed).")
    folder: str | None = Field(None, description="submitit's job folder (scripts, pickles, job stdout/stderr); "
                               "default: SWEEP_DIR/.submitit. Must be on a file system the nodes share.")
    setup: list[str] = Field(default_factory=list, description="Shell lines run before each job, e.g. "
                             "['module load cuda/12.1', 'source ~/venv/bin/activate'].")
    python: str | None = Field(None, description="Python on the nodes (default: this interpreter).")
    poll_seconds: float = Field(10.0, gt=0, description="Seconds between job-state checks.")
    max_requeue: int = Field(3, ge=0, description="Times a job that hits its time limit or is preempted is "
                             "requeued (each resumes from its last checkpoint).")
    cancel_on_stop: bool = Field(True, description="Ctrl-C on the sweep cancels its jobs (they resume on the "
                                 "next sweep); false leaves them running.")
