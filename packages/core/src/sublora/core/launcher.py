"""The launcher interface: how a sweep's points get run (here, or as jobs of a cluster scheduler).

A sweep turns each unfinished point into a ``Task`` (a `sublora run` command line, its
environment, its log file and the resources it asks for) and hands them all to one
launcher. The launcher runs them and reports each start and end; the sweep alone decides
what a point's end means (done, failed, interrupted) by reading the run directory, so a
launcher never needs to understand runs. A point that a launcher loses (a killed job, a
node that died) is simply not finished: the next sweep resumes it from its checkpoint.

Launchers are plugins like every other component: a ``LauncherConfig`` subclass (typed
options, ``extra="forbid"``) registered under the ``sublora.launchers`` entry-point group,
naming a ``Launcher`` implementation. Built in: ``local`` (processes on this machine) and
``slurm`` (one job-array element per point through submitit; ``sublora-cli[slurm]``).

``Resources`` are what one point asks a scheduler for; a grid sets them in a ``resources:``
block and per point through ``resources.*`` keys of its axes. This module imports neither
torch nor numpy.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sublora.core.component import ComponentConfig

_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


class Resources(BaseModel):
    """What one point asks a scheduler for. ``local`` uses none of it except ``gpus`` (CUDA devices shown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = Field(None, description="SLURM partition (default: the cluster's).")
    gpus: int = Field(0, ge=0, description="GPUs of the point (on one node).")
    cpus: int = Field(1, ge=1, description="CPU cores of the point; also its torch threads unless --threads is given.")
    mem: str | None = Field(None, description="Memory of the point, e.g. '16G', '512M' (default: the partition's).")
    time: int | str | None = Field(None, description="Wall-time limit: minutes, or 'HH:MM:SS' / 'D-HH:MM:SS'.")
    constraint: str | None = Field(None, description="SLURM --constraint (node features, e.g. 'a100').")
    account: str | None = Field(None, description="SLURM --account.")
    qos: str | None = Field(None, description="SLURM --qos.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Any other sbatch option, name -> value "
                                  "(e.g. {exclusive: true}), passed through as is.")

    @field_validator("mem")
    @classmethod
    def _memory_with_unit(cls, value: str | None) -> str | None:
        if value is not None and not _MEM.match(str(value)):
            raise ValueError(f"{value!r} is not an amount of memory; write e.g. '16G' or '512M'")
        return value

    @field_validator("time")
    @classmethod
    def _minutes_or_clock(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            minutes_of(value)
        return value

    @property
    def minutes(self) -> int | None:
        return None if self.time is None else minutes_of(self.time)

    @property
    def mem_gb(self) -> float | None:
        if self.mem is None:
            return None
        number, unit = _MEM.match(str(self.mem)).groups()
        return float(number) * {"": 1 / 1024, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}[unit.upper()]


def minutes_of(value: int | str) -> int:
    """Minutes of a SLURM-style time limit: 90, '90', '1:30:00', '2-00:00:00' (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time limit")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"time limit {value} must be at least 1 minute")
        return value
    match = _TIME.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a time limit; write minutes (90) or 'HH:MM:SS' or 'D-HH:MM:SS'")
    days, a, b, c = match.groups()
    if b is None:  # minutes alone (days-hours form needs a colon part in SLURM; keep it simple)
        minutes = int(a)
    elif c is None:  # MM:SS
        minutes = int(a) + (int(b) > 0)
    else:  # HH:MM:SS
        minutes = int(a) * 60 + int(b) + (int(c) > 0)
    minutes += int(days or 0) * 24 * 60
    if minutes < 1:
        raise ValueError(f"time limit {value!r} must be at least 1 minute")
    return minutes


@dataclass(frozen=True)
class Task:
    """One point to run: its `sublora run` command, environment additions, log file and resources."""

    name: str
    command: tuple[str, ...]
    env: dict[str, str]
    log: Path
    resources: Resources = field(default_factory=Resources)


class Started(Protocol):
    """started(task, job_id): the task began (job_id: the scheduler's id, or the local pid, as text).

    A scheduler's launcher may first report ``waiting=True`` when the job is submitted but waits for
    resources, then call again without it when the job runs (and with it again if the job is
    requeued); launchers that run tasks at once never pass it."""

    def __call__(self, task: Task, job_id: str | None, *, waiting: bool = False) -> None: ...


#: finished(task, exit_code, error): the task ended; exit_code None when the launcher lost it (error says how)
Finished = Callable[[Task, int | None, str | None], None]


class LauncherConfig(ComponentConfig):
    """Base of every launcher's options. ``jobs``: how many points run at once (None: the launcher's default)."""

    kind: ClassVar[str] = "launcher"
    jobs: int | None = Field(None, ge=1, description="Points run at once (`sublora sweep --jobs`).")


class Launcher(ABC):
    """Runs a sweep's tasks and reports each start and end; built as ``Launcher(config)``."""

    def __init__(self, config: LauncherConfig):
        self.config = config

    def default_threads(self, resources: Resources) -> int:
        """torch threads per point when the user gives none (``resources`` of the grid's base)."""
        return resources.cpus

    @property
    def jobs(self) -> int | None:
        """Points at once, as recorded in sweep.json (None: no limit of the launcher's own)."""
        return self.config.jobs

    def describe(self) -> str:
        """A few words for the live table's title, e.g. 'local, 2 at once'."""
        return self.config.spec

    @abstractmethod
    def launch(self, tasks: list[Task], started: Started, finished: Finished) -> None:
        """Run every task; return when each has finished (or was lost) or ``stop`` was called.

        Call ``started`` once per task when it begins and ``finished`` once per task that began;
        never raise for one task's failure (report it through ``finished``).
        """

    @abstractmethod
    def stop(self) -> None:
        """Stop (Ctrl-C): start nothing more, end what runs (it resumes from its checkpoint next time)."""
