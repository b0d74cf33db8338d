"""The gradient-file format (``sublora-grads/1``), read: what LM-GC and the baselines compress.

A gradient directory (from `sublora lmgc collect` or `sublora train --collect-grads N`, written
by ``sublora.core.gradlog``) holds ``index.json`` and one safetensors file per checkpoint. The
index gives the tensors' order (state_dict order; safetensors sorts its keys, so the file's
order means nothing). ``raw_bytes`` is the stream the paper compresses: one checkpoint's tensors
as float32, concatenated in that order, in memory order (little-endian).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublora.core.errors import DataError
from sublora.core.gradlog import FORMAT, INDEX, WEIGHTS, GradLog, checkpoint_file, read_index

__all__ = ["FORMAT", "INDEX", "WEIGHTS", "GradLog", "GradDir", "checkpoint_file", "read_index", "open_grads",
           "load_tensors", "raw_bytes"]


@dataclass(frozen=True)
class GradDir:
    """A gradient directory's index, parsed."""

    root: Path
    index: dict[str, Any]

    @property
    def source(self) -> dict[str, Any]:
        return self.index.get("source", {})

    @property
    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        return [(t["name"], tuple(t["shape"])) for t in self.index["tensors"]]

    @property
    def steps(self) -> list[int]:
        return [int(c["step"]) for c in self.index["checkpoints"]]

    @property
    def has_weights(self) -> bool:
        return bool(self.index.get("weights"))

    @property
    def numel(self) -> int:
        total = 0
        for _, shape in self.tensors:
            n = 1
            for s in shape:
                n *= s
            total += n
        return total

    def file(self, checkpoint: int | str | None = None) -> Path:
        """The file of a checkpoint: its step, "weights", or None for the last gradient checkpoint."""
        if checkpoint == "weights":
            if not self.has_weights:
                raise DataError(f"{self.root} holds no final weights (training did not finish).",
                                hint="Pick a gradient checkpoint by its step.")
            return self.root / self.index["weights"]
        entries = self.index["checkpoints"]
        if not entries:
            raise DataError(f"{self.root} holds no gradient checkpoints yet.",
                            hint="Collect with more steps than --grad-interval.")
        if checkpoint is None:
            return self.root / entries[-1]["file"]
        for entry in entries:
            if str(entry["step"]) == str(checkpoint):
                return self.root / entry["file"]
        raise DataError(f"{self.root} has no checkpoint {checkpoint!r}.",
                        hint=f"Steps: {', '.join(map(str, self.steps)) or 'none'}; or 'weights'.")


def open_grads(root: str | Path) -> GradDir:
    return GradDir(Path(root), read_index(root))


def load_tensors(root: str | Path, checkpoint: int | str | None = None, select: list[str] | None = None):
    """{name: float32 numpy array} of one checkpoint (step, "weights" or None = the last), in index order.

    ``select``: names or fnmatch patterns (e.g. ``["w"]``, ``["*lora_A*"]``) to keep only some tensors.
    """
    import numpy as np
    from safetensors import SafetensorError, safe_open

    grads = open_grads(root)
    path = grads.file(checkpoint)
    names = [n for n, _ in grads.tensors if not select or any(fnmatch.fnmatchcase(n, p) for p in select)]
    if select and not names:
        raise DataError(f"No tensor of {root} matches {select}.",
                        hint=f"Tensors: {', '.join(n for n, _ in grads.tensors[:8])}{' ...' if len(grads.tensors) > 8 else ''}")
    shapes = dict(grads.tensors)
    out = {}
    try:
        with safe_open(str(path), framework="np") as f:
            keys = set(f.keys())
            for name in names:
                if name not in keys:
                    raise DataError(f"{path} has no tensor {name!r}, which {grads.root / INDEX} lists.",
                                    hint="The directory is damaged; collect the gradients again.")
                array = f.get_tensor(name)
                if array.dtype != np.float32 or tuple(array.shape) != shapes[name]:
                    raise DataError(f"{path}: tensor {name!r} is {array.dtype} {tuple(array.shape)}, the index says "
                                    f"float32 {shapes[name]}.", hint="The directory is damaged; collect again.")
                out[name] = array
    except (SafetensorError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{path} is missing.", hint="The directory is damaged; collect the gradients again.") from exc
        raise DataError(f"{path} is not a readable safetensors file ({exc}).",
                        hint="The directory is damaged; collect the gradients again.") from exc
    return out


def raw_bytes(root: str | Path, checkpoint: int | str | None = None, select: list[str] | None = None) -> bytes:
    """One checkpoint's tensors as float32, concatenated in state_dict order, little-endian (memory order)."""
    import numpy as np

    arrays = load_tensors(root, checkpoint, select)
    return b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in arrays.values())
