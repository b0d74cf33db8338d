"""The gradient-file format (``sublora-grads/1``), written: a directory of plain, documented files.

    DIR/index.json                   what was trained, the tensors in state_dict order, the checkpoints
    DIR/grads_000400.safetensors     the gradient of every tensor after optimizer step 400 (float32)
    DIR/weights_final.safetensors    the trained tensors at the end (when training finished)

safetensors stores its keys sorted, so the ORDER of the tensors is the index's, never the file's.
Both `sublora lmgc collect` and `sublora train --collect-grads N` write through this module
(sublora-core cannot import sublora-lmgc); ``sublora.lmgc.gradients`` reads it. index.json is
replaced atomically after each file, so it only ever lists files that are whole.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sublora.core.errors import DataError, RunDirError

FORMAT = "sublora-grads/1"
INDEX = "index.json"
WEIGHTS = "weights_final.safetensors"


def checkpoint_file(step: int) -> str:
    return f"grads_{step:06d}.safetensors"


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_index(root: str | Path) -> dict[str, Any]:
    """index.json of a gradient directory, checked to be this format."""
    path = Path(root) / INDEX
    if not path.is_file():
        raise DataError(f"{root} is not a gradient directory (no {INDEX}).",
                        hint="Point at a directory written by `sublora lmgc collect` or RUN/grads of "
                        "`sublora train --collect-grads N`.")
    try:
        index = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON ({exc}).", hint="Collect the gradients again.") from exc
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        found = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise DataError(f"{path} has format {found!r}, not {FORMAT!r}.",
                        hint="Point at a directory written by `sublora lmgc collect` or `sublora train --collect-grads`.")
    return index


class GradLog:
    """Appends checkpoints to a gradient directory, keeping index.json true after every file."""

    def __init__(self, root: Path, index: dict[str, Any]):
        self.root = root
        self.index = index
        self._shapes = [(t["name"], tuple(t["shape"])) for t in index["tensors"]]

    @classmethod
    def create(cls, root: str | Path, source: dict[str, Any], tensors: list[tuple[str, tuple[int, ...]]], *,
               seeds: dict[str, int] | None = None, versions: dict[str, str] | None = None,
               force: bool = False) -> "GradLog":
        """A new, empty gradient directory; refuses a non-empty one unless ``force`` (then its gradient
        files are removed)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise RunDirError(f"{root} is a file, not a directory.", hint="Choose another --out.")
        if root.is_dir() and any(root.iterdir()):
            if not force:
                raise RunDirError(f"{root} is not empty; refusing to write gradients into it.",
                                  hint="Choose a new or empty --out directory, or pass --force to replace "
                                  "the gradients there.")
            cls._clear(root)
        root.mkdir(parents=True, exist_ok=True)
        index = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": source,
                 "seeds": seeds or {}, "versions": versions or {},
                 "tensors": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in tensors],
                 "checkpoints": [], "weights": None}
        log = cls(root, index)
        log._save_index()
        return log

    @classmethod
    def resume(cls, root: str | Path, source: dict[str, Any], tensors: list[tuple[str, tuple[int, ...]]], *,
               after_step: int, seeds: dict[str, int] | None = None,
               versions: dict[str, str] | None = None) -> "GradLog":
        """Continue the directory of an interrupted run at ``after_step``: checkpoints past it (and the final
        weights) are dropped, since training redoes those steps; a missing or foreign directory starts anew."""
        root = Path(root)
        try:
            index = read_index(root)
        except DataError:
            return cls.create(root, source, tensors, seeds=seeds, versions=versions, force=True)
        if [(t["name"], tuple(t["shape"])) for t in index["tensors"]] != [(n, tuple(s)) for n, s in tensors]:
            return cls.create(root, source, tensors, seeds=seeds, versions=versions, force=True)
        for entry in index["checkpoints"]:
            if entry["step"] > after_step:
                (root / entry["file"]).unlink(missing_ok=True)
        if index.get("weights"):
            (root / index["weights"]).unlink(missing_ok=True)
        index.update(source=source, seeds=seeds or index.get("seeds", {}), versions=versions or index.get("versions", {}),
                     checkpoints=[e for e in index["checkpoints"] if e["step"] <= after_step], weights=None)
        log = cls(root, index)
        log._save_index()
        return log

    @staticmethod
    def _clear(root: Path) -> None:
        for path in root.iterdir():
            if path.is_file() and (path.name == INDEX or path.suffix == ".safetensors" or path.name.startswith(".")):
                path.unlink()

    def _save_index(self) -> None:
        _write_json(self.root / INDEX, self.index)

    def _write_tensors(self, name: str, tensors: Mapping[str, Any], metadata: dict[str, str]) -> None:
        import torch
        from safetensors.torch import save

        from sublora.core.checkpoint import canonical

        names = [n for n, _ in self._shapes]
        if list(tensors) != names:
            raise ValueError(f"tensors {list(tensors)[:4]}... are not the index's {names[:4]}... in that order")
        out = {}
        for n, shape in self._shapes:
            t = torch.as_tensor(tensors[n]).detach().to("cpu", torch.float32).contiguous()
            if tuple(t.shape) != shape:
                raise ValueError(f"tensor {n} has shape {tuple(t.shape)}, the index says {shape}")
            out[n] = t.clone()  # views of one buffer (e.g. slices of theta) cannot be saved as they are
        tmp = self.root / f".{name}.tmp{os.getpid()}"
        tmp.write_bytes(canonical(save(out, metadata={"format": FORMAT, **metadata})))
        os.replace(tmp, self.root / name)

    def add(self, step: int, gradients: Mapping[str, Any]) -> Path:
        """Write the gradients of optimizer step ``step`` (1-based), in the index's tensor order."""
        name = checkpoint_file(step)
        self._write_tensors(name, gradients, {"kind": "gradient", "step": str(step)})
        self.index["checkpoints"] = [e for e in self.index["checkpoints"] if e["step"] != step] + [
            {"step": step, "file": name}]
        self._save_index()
        return self.root / name

    def set_weights(self, weights: Mapping[str, Any], step: int) -> Path:
        """Write the trained tensors at the end of training (after ``step`` optimizer steps)."""
        self._write_tensors(WEIGHTS, weights, {"kind": "weights", "step": str(step)})
        self.index["weights"] = WEIGHTS
        self.index["weights_step"] = step
        self._save_index()
        return self.root / WEIGHTS

    def update_source(self, **fields: Any) -> None:
        """Add facts known only at the end (e.g. accuracy) to the index's ``source``."""
        self.index["source"].update(fields)
        self._save_index()
