"""The layout of a run directory, in one place.

    RUN/config.yaml            resolved config (human-readable copy)
    RUN/manifest.json          config, versions, seeds, data identity, status
    RUN/metrics.jsonl          one JSON line per log/eval event
    RUN/checkpoint/last.safetensors  w (+ projector-owned tensors) at the last checkpoint
    RUN/checkpoint/best.safetensors  ... at the best validation loss (the model that is certified)
    RUN/checkpoint/state.pt    the last commit: step, w, optimizer, RNGs, best model, metrics length
                               (last/best.safetensors are published from it; a resume starts from it)
    RUN/model.slc              the compressed model (the bits the bound pays for)
    RUN/certificate.json       every bound with every input
    RUN/.lock                  pid + host of the process working in it (see runlock)
    RUN/grads/                 gradients every N steps with --collect-grads N (see gradlog)

A run directory remembers the settings it was made with; ``changes`` compares them
with the settings a command is given now, so nothing is silently ignored.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError, RunDirError
from sublora.core.manifest import config_diff, read_json

Diff = list[tuple[str, Any, Any]]
REPLACED = ".replaced"  # where set_aside moves a run that is redone with new settings


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def config_yaml(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def grads(self) -> Path:
        return self.root / "grads"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoint"

    @property
    def last(self) -> Path:
        return self.checkpoint_dir / "last.safetensors"

    @property
    def best(self) -> Path:
        return self.checkpoint_dir / "best.safetensors"

    @property
    def state(self) -> Path:
        return self.checkpoint_dir / "state.pt"

    @property
    def compressed(self) -> Path:
        return self.root / "model.slc"

    @property
    def certificate(self) -> Path:
        return self.root / "certificate.json"

    def read_manifest(self) -> dict[str, Any]:
        if not self.manifest.is_file():
            if not self.root.exists():
                raise RunDirError(f"{self.root} does not exist.",
                                  hint="Check the path, or train into it with `sublora train --out DIR` (or `sublora run`).")
            if self._posthoc():
                raise RunDirError(f"{self.root} holds a post-hoc certificate (`sublora bound-model`), not a run.",
                                  hint=f"`sublora verify {self.root}` checks it; its model is model.slc + architecture.json.")
            raise RunDirError(
                f"{self.root} is not a sublora run directory (no manifest.json).",
                hint="Train into it first with `sublora train --out DIR` (or `sublora run`).",
            )
        try:
            manifest = read_json(self.manifest)
        except ValueError as exc:
            raise RunDirError(f"{self.manifest} is corrupt: {exc}.",
                              hint="It was edited or cut short; restore it, or train into a new directory.") from exc
        if not isinstance(manifest, dict):
            raise RunDirError(f"{self.manifest} is not a JSON object.",
                              hint="It was not written by sublora, or was edited; restore it.")
        return manifest

    def _posthoc(self) -> bool:
        try:
            return read_json(self.certificate).get("kind") == "posthoc"
        except (OSError, ValueError, AttributeError):
            return False

    def require(self, certified: bool = False) -> None:
        """Refuse a directory that is not a run (or not a certified one), cheaply: before any heavy import."""
        self.read_manifest()
        if not certified:
            return
        has_cert, has_model = self.certificate.is_file(), self.compressed.is_file()
        if not has_cert and not has_model:
            raise RunDirError(f"{self.root} has no certificate and compressed model yet.",
                              hint=f"Bound it first: `sublora bound {self.root}`.")
        if not has_model:
            raise RunDirError(f"{self.root} has a certificate but not {self.compressed.name}, the compressed model it "
                              "certifies.", hint=f"Restore {self.compressed.name}, or certify again: "
                                                 f"`sublora bound {self.root} --force`.")
        if not has_cert:
            raise RunDirError(f"{self.root} has {self.compressed.name} but no certificate.json.",
                              hint=f"Certify it: `sublora bound {self.root} --force`.")

    def config(self) -> RunConfig:
        manifest = self.read_manifest()
        if manifest.get("kind") == "finetune":
            raise RunDirError(f"{self.root} is a finetuning run (`sublora finetune`), not a pretraining run.",
                              hint=f"`sublora show {self.root}` and `sublora verify {self.root}` read it.")
        if not isinstance(manifest.get("config"), dict):
            raise RunDirError(f"{self.manifest} holds no config.", hint="It was not written by sublora, or was edited.")
        try:
            return RunConfig.from_dict(manifest["config"])
        except ConfigError as exc:
            raise RunDirError(f"{self.manifest}: its config is not valid: {exc.message}",
                              hint="It was edited, or written by another sublora version; restore it.") from exc

    def status(self) -> str | None:
        """The manifest's status ('training', 'trained', 'bounded', 'verified'), None when there is no run."""
        return self.read_manifest().get("status", "training") if self.manifest.is_file() else None

    def changes(self, config: RunConfig) -> "Changes":
        """How ``config`` differs from what this run was trained (and, if certified, bounded) with."""
        from sublora.core.checkpoint import TRAINING_NEUTRAL_FIELDS

        stored = self.config()
        training = config_diff(stored, config, exclude=TRAINING_NEUTRAL_FIELDS)
        bound = stored.bound.model_dump(mode="json")
        if self.certificate.is_file():
            try:  # what the certificate was computed with (`sublora bound` may override bound.*)
                bound = RunConfig.from_dict({**stored.to_dict(), "bound": {"levels_grid": [],
                                             **read_json(self.certificate)["bound_settings"]}}).bound.model_dump(mode="json")
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable certificate is verify's to report
        bound_diff = [(f"bound.{k}", a, b) for k, a, b in _diff_dicts(bound, config.bound.model_dump(mode="json"))]
        return Changes(training, bound_diff)


@dataclass(frozen=True)
class Changes:
    training: Diff  # settings that change what training produces
    bound: Diff  # bound.* settings against those of the certificate (or, before one, of the manifest)

    def __bool__(self) -> bool:
        return bool(self.training or self.bound)

    @property
    def all(self) -> Diff:
        return self.training + self.bound


@contextmanager
def staged(*finals: Path) -> Iterator[list[Path]]:
    """Temporary paths for outputs that appear together or not at all.

    Yields one temporary path per final path (``.NAME.tmp`` beside it); when the block succeeds they
    are moved onto the finals in order, and whatever happens they are removed: a failure (or an
    interrupt) midway never leaves a new model.slc beside an old certificate.
    """
    tmps = [Path(p).with_name(f".{Path(p).name}.tmp") for p in finals]
    try:
        yield tmps
        for tmp, final in zip(tmps, finals):
            tmp.replace(final)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def set_aside(root: Path) -> Path:
    """Move a run directory to PARENT/.replaced/NAME-TIME (kept, never deleted); returns where it went."""
    from sublora.core.runlock import lock_holder

    root = Path(root)
    holder = lock_holder(root)
    if holder is not None:
        raise RunDirError(f"{root} is in use by `{holder.get('command')}` (pid {holder.get('pid')}); "
                          "it cannot be replaced now.", hint="Wait for that process to finish.")
    dest = root.parent / REPLACED / f"{root.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while dest.exists():
        n += 1
        dest = dest.with_name(f"{root.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root, dest)
    return dest


def _diff_dicts(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(k, a.get(k), b.get(k)) for k in list(a) + [k for k in b if k not in a] if a.get(k) != b.get(k)]
