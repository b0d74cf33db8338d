"""Training on several processes (torchrun, DDP-style) and on a GPU: placement, one all-reduce per step.

sublora trains only w (and tensors a projector owns), so data-parallel training needs one collective per
optimizer step: the sum of the ranks' gradients of those tensors. Every rank rebuilds theta0 and P from the
config's seeds; no projection is ever sent. The step's micro-batches are one global sequence fixed by
train.seed (every rank draws all of them and computes on micro-batches rank, rank + N, ...), so N processes
train what one process with the same train.grad_accum trains, up to the order of float additions, and the
state a checkpoint holds does not depend on N: a run may resume with another N.

Under torchrun (RANK/WORLD_SIZE in the environment) ``session`` joins the process group (gloo on CPU, NCCL
on CUDA); otherwise it is a one-process placement and nothing is initialised.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sublora.core import errors
from sublora.core.errors import ConfigError, TrainingError

if TYPE_CHECKING:  # torch is imported where it is used: `sublora train`'s checks answer without it
    import torch

T = TypeVar("T")
#: Tests only: "RANK:STEP" makes that rank exit abruptly (os._exit) before optimizer step STEP + 1.
FAIL_ENV = "SUBLORA_TEST_FAIL_RANK"
#: Set by `sublora train --nproc`: a directory where each rank leaves a one-line report of its error.
REPORT_ENV = "SUBLORA_DIST_REPORT"


class RankLost(TrainingError):
    """Another process of a multi-process run stopped (died, was killed or timed out)."""


@dataclass(frozen=True)
class Placement:
    """Where this process trains: its rank among ``world_size``, its device and compute dtype."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    dtype: torch.dtype
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of it."""
        return {"world_size": self.world_size, "device": self.device.type, "dtype": self.dtype_name,
                "backend": self.backend}

    def share(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 and hand its result (or its error) to every rank."""
        if self.world_size == 1:
            return fn()
        import torch.distributed as dist

        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except errors.SubloraError as exc:
                box[0] = ("error", (type(exc).__name__, exc.message, exc.hint))
                self._broadcast(dist, box)
                raise
            except BaseException as exc:
                box[0] = ("error", ("TrainingError", f"rank 0 failed: {type(exc).__name__}: {exc}", None))
                self._broadcast(dist, box)
                raise
        self._broadcast(dist, box)
        kind, payload = box[0]
        if kind == "ok":
            return payload
        name, message, hint = payload
        error = getattr(errors, name, TrainingError)(message, hint=hint)
        error.from_main = True  # rank 0 reports it; the CLI keeps the other ranks quiet
        raise error

    def _broadcast(self, dist, box: list[Any]) -> None:
        try:
            dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        except RuntimeError as exc:
            raise lost(self, exc) from exc

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (e.g. its time limit decides when all stop)."""
        if self.world_size == 1:
            return flag
        import torch
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=self.device if self.backend == "nccl" else "cpu")
        try:
            dist.broadcast(t, src=0)
        except RuntimeError as exc:
            raise lost(self, exc) from exc
        return bool(t.item())


def lost(place: Placement, exc: BaseException) -> RankLost:
    return RankLost(f"rank {place.rank} of {place.world_size}: another process of this run stopped or stopped "
                    f"answering ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).",
                    hint="The run's last checkpoint is valid: rerun the same command (any --nproc) to resume; "
                    "see the other ranks' errors above for the cause.")


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """'auto' = CUDA when available, else CPU; 'cuda' without a GPU is refused."""
    import torch

    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but this machine has no usable CUDA GPU "
                          f"(torch {torch.__version__}).", hint="Use --device cpu (or auto), i.e. --train.device=cpu.")
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(f"Rank with local rank {local_rank} has no GPU: this machine has "
                          f"{torch.cuda.device_count()}.", hint="Start at most one process per GPU.")
    return torch.device("cuda", local_rank)


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """'auto' = bfloat16 autocast on a CUDA GPU that supports it, float32 elsewhere."""
    import torch

    if spec == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    return getattr(torch, spec)


def autocast(place: Placement):
    """The training forward's autocast context (a no-op in float32)."""
    from contextlib import nullcontext

    import torch

    if place.dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=place.device.type, dtype=place.dtype)


def available(device_spec: str) -> tuple[int, str]:
    """(how many processes this machine can run, of what): usable CPU cores, or GPUs for CUDA."""
    import torch

    device = resolve_device(device_spec)
    if device.type == "cuda":
        return torch.cuda.device_count(), "GPUs"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores, "CPU cores"


def check_nproc(nproc: int, device_spec: str, threads: int = 1) -> None:
    """Refuse more processes than cores (CPU) or GPUs (CUDA): they would only queue for the same hardware."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}.", hint="Use --nproc 1 (or omit it) for one process.")
    have, what = available(device_spec)
    if nproc > have:
        raise ConfigError(f"--nproc {nproc} is more than the {have} {what} of this machine.",
                          hint=f"Use --nproc {have} or fewer (with --train.threads=1 on CPU), or run on a machine "
                          f"with more {what}.")


def check_accum(grad_accum: int, world_size: int) -> int:
    """Micro-batches per rank per step: train.grad_accum is the global count and must split evenly."""
    if grad_accum % world_size:
        raise ConfigError(f"train.grad_accum ({grad_accum}) is the number of micro-batches per optimizer step over "
                          f"all processes and must be a multiple of the number of processes ({world_size}).",
                          hint=f"Set --train.grad_accum to a multiple of {world_size}, or change the process count.")
    return grad_accum // world_size


def launched() -> bool:
    """True in a process started by torchrun (or anything setting RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


@contextmanager
def session(train_config) -> Iterator[Placement]:
    """This process's placement; under torchrun, joined to the process group for the block."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1")) if launched() else 1
    rank, local = (env_rank(), int(os.environ.get("LOCAL_RANK", "0"))) if world > 1 else (0, 0)
    device = resolve_device(train_config.device, local)
    dtype = resolve_dtype(train_config.dtype, device)
    if world == 1:
        yield Placement(0, 1, 0, device, dtype)
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    ours = not dist.is_initialized()
    if ours:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend, timeout=timedelta(seconds=train_config.dist_timeout))
        except (RuntimeError, ValueError) as exc:
            raise TrainingError(f"rank {rank} could not join the {world}-process group ({type(exc).__name__}: {exc}).",
                                hint="Start the run with `sublora train --nproc N` or torchrun; check that no "
                                "firewall blocks 127.0.0.1 (or MASTER_ADDR).") from exc
    place = Placement(rank, world, local, device, dtype, backend)
    try:
        yield place
        if ours:
            # Leave together: a rank that destroyed its group and exited while rank 0 was still
            # committing was killed by gloo at exit now and then ("terminate called without an active
            # exception", exit -6). Not on the error path: there the other ranks may never arrive.
            dist.barrier()
    except BaseException as exc:
        _report(place, exc)
        raise
    finally:
        if ours:
            dist.destroy_process_group()


def _report(place: Placement, exc: BaseException) -> None:
    """Leave this rank's error where `sublora train --nproc` looks for it (rank 0's error is the run's)."""
    where = os.environ.get(REPORT_ENV)
    if not where:
        return
    record = {"rank": place.rank, "type": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc),
              "hint": getattr(exc, "hint", None), "from_main": bool(getattr(exc, "from_main", False))}
    try:
        Path(where, f"rank{place.rank}.json").write_text(json.dumps(record))
    except OSError:
        pass


def maybe_fail(place: Placement, step: int) -> None:
    """The injected failure of tests (FAIL_ENV): this rank dies like a killed process, without cleanup."""
    spec = os.environ.get(FAIL_ENV)
    if spec and spec == f"{place.rank}:{step}" and place.world_size > 1:
        os._exit(17)


class GradientSum:
    """Sums the ranks' gradients of the trained tensors (w, then projector-owned ones) with one all-reduce.

    The step's loss rides in the same buffer (4 bytes), so the log and the divergence check see the
    global loss without a second collective. ``bytes_per_step`` = 4 x (d + projector-owned numbers + 1).
    """

    def __init__(self, params: list[torch.nn.Parameter], place: Placement):
        self.params, self.place = params, place
        self.numel = sum(p.numel() for p in params)
        self.bytes_per_step = 0 if place.world_size == 1 else (self.numel + 1) * 4
        self.bytes_total = 0

    def __call__(self, loss_sum: float) -> float:
        """All-reduce (sum) the gradients in place; return the global loss."""
        if self.place.world_size == 1:
            return loss_sum
        import torch
        import torch.distributed as dist

        parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in self.params]
        flat = torch.cat([*parts, torch.tensor([loss_sum], dtype=parts[0].dtype, device=parts[0].device)])
        try:
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        except RuntimeError as exc:  # DistBackendError and friends: a peer died, hung past the timeout, ...
            raise lost(self.place, exc) from exc
        self.bytes_total += flat.numel() * flat.element_size()
        offset = 0
        for p in self.params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n
        return float(flat[-1])

    def sum_tensor(self, t: torch.Tensor) -> torch.Tensor:
        """A one-off sum over ranks (the LoRA gradient on --collect-grads steps)."""
        if self.place.world_size == 1:
            return t
        import torch.distributed as dist

        t = t.clone()
        try:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        except RuntimeError as exc:
            raise lost(self.place, exc) from exc
        return t


# torchrun's main, minus the traceback it prints when a rank fails (the launcher reports that once, clearly).
_TORCHRUN = """import sys
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
try:
    main(sys.argv[1:])
except ChildFailedError:
    sys.exit(1)
"""


def torchrun_command(nproc: int, module_args: list[str]) -> list[str]:
    """torchrun (`python -m torch.distributed.run`) --standalone --nproc-per-node N -m sublora.cli ARGS, on a
    free local port; the same as typing `torchrun --standalone --nproc-per-node N -m sublora.cli ARGS`."""
    debug = os.environ.get("SUBLORA_DEBUG", "").lower() not in ("", "0", "false", "no")
    head = [sys.executable, "-m", "torch.distributed.run"] if debug else [sys.executable, "-c", _TORCHRUN]
    return [*head, "--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.5",
            "-m", "sublora.cli", *module_args]


def launch(nproc: int, module_args: list[str], run_dir: Path, threads: int) -> None:
    """Run ``sublora ARGS`` on ``nproc`` processes through torchrun; one TrainingError if any rank failed."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sublora-ranks-") as reports:
        env = {**os.environ, REPORT_ENV: reports, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
        env.setdefault("LOGLEVEL", "ERROR")  # torchrun's own warnings; the ranks' messages still show
        proc = subprocess.Popen(torchrun_command(nproc, module_args), env=env)
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # Ctrl-C (the ranks got it too) or SIGTERM: torchrun stops them, rank 0 saves
            proc.terminate()
            proc.wait()
            saved = saved_step(run_dir)
            raise errors.RunInterrupted(
                f"interrupted; the run is saved in {run_dir}"
                + (f" at step {saved}" if saved is not None else " (no step completed)")
                + ": rerun the same command (any --nproc) to resume.", step=saved) from None
        if code == 0:
            return
        ranks = {}
        for path in Path(reports).glob("rank*.json"):
            try:
                record = json.loads(path.read_text())
                ranks[int(record["rank"])] = record
            except (OSError, ValueError, KeyError):
                continue
    raise launch_error(nproc, code, ranks, run_dir)


def launch_error(nproc: int, code: int, ranks: dict[int, dict[str, Any]], run_dir: Path) -> errors.SubloraError:
    """One error for a failed multi-process run: rank 0's own error if it had one, else which ranks died."""
    first = ranks.get(0)
    if first and first["type"] not in ("RankLost", "RunInterrupted", "KeyboardInterrupt"):
        cls = getattr(errors, first["type"], TrainingError)
        return cls(first["message"], hint=first.get("hint"))
    silent = [r for r in range(nproc) if r not in ranks]
    saved = saved_step(run_dir)
    where = (f"the last checkpoint (step {saved}) in {run_dir} is valid" if saved is not None
             else f"no step was completed, nothing was saved in {run_dir}")
    if silent:
        cause = f"rank {', '.join(map(str, silent))} stopped without an error report (killed or crashed)"
    else:
        cause = "; ".join(f"rank {r}: {ranks[r]['message']}" for r in sorted(ranks))
    return RankLost(f"Training with {nproc} processes failed (torchrun exit code {code}): {cause}; {where}.",
                    hint="Fix the cause and rerun the same command (any --nproc) to resume.")


def saved_step(run_dir: Path) -> int | None:
    """The step of the run's committed state, if any."""
    path = Path(run_dir) / "checkpoint" / "state.pt"
    if not path.is_file():
        return None
    import torch

    try:
        return int(torch.load(path, weights_only=True, map_location="cpu")["step"])
    except Exception:  # noqa: BLE001 - a damaged state reports itself on resume
        return None
