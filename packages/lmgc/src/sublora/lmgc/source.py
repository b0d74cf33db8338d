"""The ``lmgc`` source: gradients/weights of other runs, serialized, as documents for ``sublora train``.

A prior trained on this corpus is a *neural parameter prior* (the LM-GC paper's stated next step):
it has seen numbers, so it is NOT zero-shot, and which numbers it saw matters (a prior that saw the
run being coded, or runs trained on the same data, is not independent of it). ``describe()``
therefore records every directory read: what was trained there (network, data set, seeds, or the
sublora run and its data identity), the checkpoints read and the sha256 of every file. That lands
in the prepared data's meta.json, where ``sublora.lmgc.provenance`` finds it again from the prior.

Each checkpoint's stream is what `sublora lmgc compress` codes (``gradients.raw_bytes``: float32,
state_dict order, memory order), cut into 512-byte chunks (the last zero-padded) and serialized.
Documents are yielded in a fixed order: directories as listed (globs sorted), checkpoints by step
(gradients before weights), chunks in stream order.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sublora.core.data.files import listing_fingerprint
from sublora.core.errors import DataError
from sublora.core.source import Source
from sublora.lmgc.gradients import INDEX, GradDir, open_grads
from sublora.lmgc.serialize import CHUNK, check_bytes_per_group, serialize
from sublora.lmgc.source_config import GradsSourceConfig

#: what every prior trained on this source saw; read by sublora.lmgc.prior and sublora.lmgc.provenance
KIND = "lmgc-serialized-numbers"


class GradsSource(Source):
    def __init__(self, config: GradsSourceConfig):
        super().__init__(config)
        check_bytes_per_group(config.bytes_per_group)
        self._dirs: list[GradDir] | None = None

    # ---- what is read

    def directories(self) -> list[GradDir]:
        """The gradient directories, in the order given (each glob's matches sorted), each once."""
        if self._dirs is None:
            found: list[Path] = []
            for pattern in self.config.paths:
                path = Path(pattern).expanduser()
                matches = [path] if path.exists() else [Path(m) for m in sorted(glob.glob(str(path)))]
                matches = [m for m in matches if (m / INDEX).is_file()]
                if not matches:
                    raise DataError(f"lmgc source: {pattern!r} is not a gradient directory and matches none "
                                    f"(no {INDEX}).",
                                    hint="Point data.source_options.paths at directories written by `sublora lmgc "
                                    "collect` or RUN/grads of `sublora train --collect-grads N`.")
                found += [m for m in matches if m.resolve() not in {f.resolve() for f in found}]
            self._dirs = [open_grads(p) for p in found]
        return self._dirs

    def checkpoints(self, grads: GradDir) -> list[int | str]:
        """The checkpoints read from one directory: steps (gradients) and/or "weights"."""
        variant = self.config.variant or "grads"
        out: list[int | str] = []
        if variant in ("grads", "all"):
            steps = grads.steps
            if self.config.steps is not None:
                missing = [s for s in self.config.steps if s not in steps]
                if missing:
                    raise DataError(f"lmgc source: {grads.root} has no gradient checkpoint at step(s) {missing}.",
                                    hint=f"Its steps: {', '.join(map(str, steps)) or 'none'}.")
                steps = [s for s in steps if s in self.config.steps]
            out += steps
        if variant in ("weights", "all"):
            if not grads.has_weights:
                raise DataError(f"lmgc source: {grads.root} holds no final weights (training did not finish).",
                                hint="Use the lmgc:grads variant, or finish collecting that run.")
            out.append("weights")
        if not out:
            raise DataError(f"lmgc source: nothing to read in {grads.root} (no gradient checkpoints).",
                            hint="Collect with more steps than --grad-interval, or use lmgc:weights.")
        return out

    def chunk_indices(self, n_chunks: int) -> list[int]:
        """Which chunks of a checkpoint are read: all, or ``max_chunks`` evenly spaced (first and last kept)."""
        keep = self.config.max_chunks
        if keep is None or n_chunks <= keep:
            return list(range(n_chunks))
        if keep == 1:
            return [0]
        return sorted({round(i * (n_chunks - 1) / (keep - 1)) for i in range(keep)})

    def _numel(self, grads: GradDir) -> int:
        """Floats per checkpoint after ``select``."""
        total = 0
        for name, shape in grads.tensors:
            if not self.config.select or any(fnmatch.fnmatchcase(name, p) for p in self.config.select):
                total += math.prod(shape)
        return total

    # ---- the Source interface

    def count(self) -> int:
        total = 0
        for grads in self.directories():
            per = len(self.checkpoints(grads))
            if self.config.document == "checkpoint":
                total += per
            else:
                total += per * len(self.chunk_indices(-(-4 * self._numel(grads) // CHUNK)))
        return total

    def documents(self) -> Iterator[tuple[str, str]]:
        from sublora.lmgc.gradients import raw_bytes

        cfg = self.config
        for i, grads in enumerate(self.directories()):
            for checkpoint in self.checkpoints(grads):
                raw = raw_bytes(grads.root, checkpoint, cfg.select)
                n_chunks = -(-len(raw) // CHUNK)
                label = f"{i}:{grads.root.name}/{'weights' if checkpoint == 'weights' else f'step{checkpoint}'}"
                texts = []
                for c in self.chunk_indices(n_chunks):
                    chunk = raw[c * CHUNK:(c + 1) * CHUNK]
                    chunk = chunk + bytes(CHUNK - len(chunk))  # the last chunk zero-padded, as the codec pads it
                    text = serialize(chunk, cfg.serialization, cfg.bytes_per_group)
                    if cfg.document == "chunk":
                        yield f"{label}/{c:06d}", text
                    else:
                        texts.append(text)
                if cfg.document == "checkpoint":
                    yield label, "".join(texts)

    def location(self) -> str:
        return "\n".join(str(g.root.resolve()) for g in self.directories())

    def fingerprint(self) -> dict[str, Any]:
        files = []
        for grads in self.directories():
            files.append((f"{grads.root.resolve()}/{INDEX}", grads.root / INDEX))
            for checkpoint in self.checkpoints(grads):
                path = grads.file(checkpoint)
                files.append((str(path.resolve()), path))
        return listing_fingerprint(files)

    def describe(self) -> dict[str, Any]:
        """meta.json's record of what a prior trained on this corpus saw: every run, checkpoint and file hash."""
        runs = []
        for grads in self.directories():
            checkpoints = self.checkpoints(grads)
            runs.append({
                "path": str(grads.root.resolve()),
                "source": _summary(grads.source),
                "seeds": grads.index.get("seeds"),
                "checkpoints": checkpoints,
                "files_sha256": {grads.file(c).name: _sha256(grads.file(c)) for c in checkpoints},
            })
        return {**super().describe(), "kind": KIND, "zero_shot": False,
                "serialization": self.config.serialization, "bytes_per_group": self.config.bytes_per_group,
                "runs": runs}


def _summary(source: dict[str, Any]) -> dict[str, Any]:
    """What was trained in a gradient directory, without its bulky parts (configs, versions)."""
    keep = ("kind", "network", "width", "depth", "dataset", "parameters", "split_seed", "run", "config_sha256",
            "data", "model", "test_accuracy", "final_train_loss")
    out = {k: source[k] for k in keep if k in source}
    if isinstance(source.get("config"), dict) and "seed" in source["config"]:
        out["seed"] = source["config"]["seed"]
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["GradsSource", "KIND"]
