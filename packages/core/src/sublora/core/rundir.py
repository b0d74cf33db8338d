"""The layout of a run directory, in one place.

    RUN/config.yaml            resolved config (human-readable copy)
    RUN/manifest.json          config, versions, seeds, data identity, status
    RUN/metrics.jsonl          one JSON line per log/eval event
    RUN/checkpoint/last.safetensors  w (+ projector-owned tensors) at the last checkpoint
    RUN/checkpoint/best.safetensors  ... at the best validation loss (the model that is certified)
    RUN/checkpoint/state.pt    optimizer + RNG state for resuming
    RUN/model.slc              the compressed model (the bits the bound pays for)
    RUN/certificate.json       every bound with every input
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sublora.core.config import RunConfig
from sublora.core.errors import RunDirError
from sublora.core.manifest import read_json


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
            raise RunDirError(
                f"{self.root} is not a sublora run directory (no manifest.json).",
                hint="Train into it first with `sublora train --out DIR` (or `sublora run`).",
            )
        try:
            return read_json(self.manifest)
        except ValueError as exc:
            raise RunDirError(f"{self.manifest} is corrupt: {exc}.") from exc

    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.read_manifest()["config"])
