"""One writer per run directory: RUN/.lock holds the pid and host of the process working in it.

Two `sublora train` (or train and bound) processes on one directory would each write
half of it: a manifest of one run beside the checkpoint of another. The lock file is
created atomically (it appears with its content or not at all) and removed on exit.
A lock left by a process that died is stale when its pid is gone on this host (or
now names another process, by its start time); it is then replaced. A lock from
another host cannot be checked: the error says how to remove it by hand.

The lock is re-entrant within a process, so `sublora run` can hold it across train,
bound and verify while each of them takes it too.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sublora.core.errors import RunDirError

LOCK_NAME = ".lock"
_held: dict[Path, tuple[int, int]] = {}  # resolved lock path -> (owning thread id, depth)
_guard = threading.Lock()


@contextmanager
def run_lock(run_dir: str | Path, command: str | None = None) -> Iterator[Path]:
    """Hold RUN/.lock while the block runs; RunDirError (naming the holder) if another process holds it.

    ``command`` is recorded for whoever finds the directory busy (default: this process's command line).

    Creates the directory if needed; a directory it created and left empty is removed again.
    """
    root = Path(run_dir)
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} is a file, not a run directory.", hint="Give --out a directory path.")
    path = root.resolve() / LOCK_NAME
    me = threading.get_ident()
    with _guard:
        owner, depth = _held.get(path, (me, 0))
        if depth and owner != me:
            raise RunDirError(f"{root} is in use by another thread of this process.")
        if depth:
            _held[path] = (me, depth + 1)
    if depth:  # already ours: nested use
        try:
            yield path
        finally:
            with _guard:
                _held[path] = (me, _held[path][1] - 1)
        return

    created = _missing_dirs(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        info = _acquire(path, command)
    except BaseException:
        _remove_if_empty(root, created)
        raise
    with _guard:
        _held[path] = (me, 1)
    try:
        yield path
    finally:
        with _guard:
            del _held[path]
        _release(path, info)
        _remove_if_empty(root, created)


def _missing_dirs(root: Path) -> list[Path]:
    """The directories mkdir(parents=True) is about to create, deepest first."""
    out, p = [], root.absolute()
    while not p.exists():
        out.append(p)
        p = p.parent
    return out


def _remove_if_empty(root: Path, created: list[Path]) -> None:
    """Undo our mkdir when nothing was written (a refused or failed command leaves no trace)."""
    for d in created:
        try:
            d.rmdir()  # only succeeds if empty
        except OSError:
            return


def lock_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The live holder of RUN/.lock (pid, host, command, started), or None when free or stale."""
    path = Path(run_dir) / LOCK_NAME
    holder = _read(path)
    return None if holder is None or _is_stale(path.resolve(), holder) else holder


def _me(command: str | None) -> dict[str, Any]:
    if command is None:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
    return {"pid": os.getpid(), "host": socket.gethostname(), "start_time": _start_time(os.getpid()),
            "command": command, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _acquire(path: Path, command: str | None) -> dict[str, Any]:
    info = _me(command)
    text = json.dumps(info) + "\n"
    for _ in range(20):
        if _create(path, text):
            return info
        holder = _read(path)
        if holder is None:  # being written right now (O_EXCL fallback), or emptied by a crash
            if _age(path) > 10.0:
                _break(path, None)
            else:
                time.sleep(0.05)
            continue
        if not _is_stale(path, holder):
            where = "this host" if holder.get("host") == socket.gethostname() else f"host {holder.get('host')}"
            raise RunDirError(
                f"{path.parent} is in use by `{holder.get('command', 'sublora')}` (pid {holder.get('pid')} on "
                f"{where}, since {holder.get('started', '?')}).",
                hint=f"Wait for it to finish, or use another --out. If that process no longer exists, delete {path}.",
            )
        _break(path, holder)
    raise RunDirError(f"Could not take the lock {path}: it keeps changing.", hint="Is another sublora running here?")


def _create(path: Path, text: str) -> bool:
    """Create ``path`` with ``text`` atomically; False if it exists. A hard link appears complete or not at all."""
    tmp = path.with_name(f"{LOCK_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # no hard links on this file system: exclusive create, then write
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _release(path: Path, info: dict[str, Any]) -> None:
    holder = _read(path)
    if holder is not None and holder.get("pid") == info["pid"] and holder.get("host") == info["host"]:
        path.unlink(missing_ok=True)


def _break(path: Path, stale: dict[str, Any] | None) -> None:
    """Remove a stale lock, but not a fresh one another process put there since we read it."""
    aside = path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    if _read(aside) != stale and stale is not None:  # someone else broke it and took it: put theirs back
        try:
            os.link(aside, path)
        except OSError:
            pass
    aside.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "pid" in data else None


def _is_stale(path: Path, holder: dict[str, Any]) -> bool:
    """The holder is gone: same host, and its pid is dead or now belongs to another (younger) process."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return True
    if pid == os.getpid():
        with _guard:  # our pid, but not taken by us: left by an earlier process that had this pid
            return path not in _held
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by someone else
    recorded, now = holder.get("start_time"), _start_time(pid)
    return recorded is not None and now is not None and recorded != now


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (Linux), to tell a reused pid from the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
