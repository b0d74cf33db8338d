"""Checkpoints: w (and projector-owned tensors) plus the identity of the model they belong to.

A checkpoint is tiny: theta0 and P are rebuilt from the config's seeds. Its
metadata records the layout fingerprint and the model-defining config hash,
so loading it into a model of another config fails loudly instead of
silently producing garbage.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sublora.core.config import RunConfig
from sublora.core.errors import CheckpointError
from sublora.core.manifest import config_hash

# Fields that do not change which function a given w computes.
NON_MODEL_FIELDS = {"train": True, "bound": True, "data": {"dir"}}


def model_identity(config: RunConfig) -> str:
    return config_hash(config, exclude=NON_MODEL_FIELDS)


def save_checkpoint(path: Path, model, config: RunConfig, step: int, val_loss: float | None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.hypothesis().items()}
    metadata = {
        "format": "sublora-checkpoint/1",
        "step": str(step),
        "val_loss": "" if val_loss is None else repr(float(val_loss)),
        "layout": model.layout.fingerprint(),
        "D": str(model.D),
        "d": str(model.d),
        "model_identity": model_identity(config),
        # e.g. the learned gates' gammas per layer, readable without building the model
        "projector_report": json.dumps(model.projector.report()),
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.", hint="Train first (`sublora train`).")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path} is corrupt: {exc}.", hint="Resume from another checkpoint or retrain.") from exc


def load_checkpoint(path: Path, model, config: RunConfig) -> dict[str, str]:
    """Load into ``model``; raise CheckpointError if it belongs to another config."""
    tensors, metadata = read_checkpoint(path)
    if metadata.get("model_identity") != model_identity(config) or metadata.get("layout") != model.layout.fingerprint():
        raise CheckpointError(
            f"Checkpoint {path} was trained with a different model config (D={metadata.get('D')}, "
            f"d={metadata.get('d')}) than this one (D={model.D}, d={model.d}).",
            hint="Use the run's own manifest config, or start a new run in another --out directory.",
        )
    try:
        model.load_hypothesis(tensors)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"Checkpoint {path} does not fit the model: {exc}.") from exc
    return metadata
