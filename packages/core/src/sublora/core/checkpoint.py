"""Checkpoints: w (and projector-owned tensors) plus the identity of the model they belong to.

A checkpoint is tiny: theta0 and P are rebuilt from the config's seeds. Its
metadata records the layout fingerprint and the model-defining config hash,
so loading it into a model of another config fails loudly instead of
silently producing garbage, and the hash of every setting that shaped the
training, so a manifest that is not the one the checkpoint was trained under
is caught. The same run writes the same bytes: the header is written with
sorted keys (safetensors itself orders metadata at random).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, load_file, save

from sublora.core.config import RunConfig
from sublora.core.errors import CheckpointError
from sublora.core.manifest import config_hash

# Fields that do not change which function a given w computes.
NON_MODEL_FIELDS = {"train": True, "bound": True, "data": {"dir"}, "model": {"impl"}}  # impl: same function, same tensors
# Fields that do not change what training produces (where the data lives, when it stops early,
# how often it logs, checkpoints or saves gradients, how it is bounded later): an interrupted run
# may resume with other values. Everything else, train.threads included, changes the trained bits.
# train.device is here as the process count is (neither is config): a run may move to another machine or
# device and resume; the manifest records each placement (docs/scale-training.md).
TRAINING_NEUTRAL_FIELDS = {"train": {"time_limit", "checkpoint_interval", "log_interval", "collect_grads",
                                     "device", "dist_timeout"},
                           "bound": True, "data": {"dir"}}
# Fields that change training but were added after runs existed: hashed only away from their default,
# so a run made before them keeps its training identity (its config.yaml does not name them).
ADDED_LATER = {"train": {"dtype": "auto"}, "model": {"impl": "hf"}}


def model_identity(config: RunConfig) -> str:
    return config_hash(config, exclude=NON_MODEL_FIELDS)


def training_identity(config: RunConfig) -> str:
    data = config.model_dump(mode="json", exclude=TRAINING_NEUTRAL_FIELDS)
    for section, fields in ADDED_LATER.items():
        for name, default in fields.items():
            if data.get(section, {}).get(name, default) == default:
                data[section].pop(name, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def save_checkpoint(path: Path, model, config: RunConfig, step: int, val_loss: float | None) -> None:
    write_atomic(path, checkpoint_bytes(model, config, step, val_loss))


def checkpoint_bytes(model, config: RunConfig, step: int, val_loss: float | None,
                     hypothesis: dict[str, torch.Tensor] | None = None, report: dict | None = None) -> bytes:
    """The checkpoint file's bytes: the same model, config and step give the same bytes.

    ``hypothesis`` and ``report`` (default: the model's now) let a copy taken earlier be written.
    """
    hypothesis = model.hypothesis() if hypothesis is None else hypothesis
    report = model.projector.report() if report is None else report
    tensors = {k: v.detach().cpu().contiguous() for k, v in hypothesis.items()}
    metadata = {
        "format": "sublora-checkpoint/1",
        "step": str(step),
        "val_loss": "" if val_loss is None else repr(float(val_loss)),
        "layout": model.layout.fingerprint(),
        "D": str(model.D),
        "d": str(model.d),
        "model_identity": model_identity(config),
        "training_identity": training_identity(config),
        # e.g. the learned gates' gammas per layer, readable without building the model
        "projector_report": json.dumps(report),
    }
    return canonical(save(tensors, metadata=metadata))


def canonical(data: bytes) -> bytes:
    """Rewrite a safetensors header with sorted metadata keys (the tensor bytes are kept as they are)."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # keep the tensor data 8-byte aligned, as safetensors does
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def parse_checkpoint(data: bytes, name: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a checkpoint held in memory (e.g. inside state.pt)."""
    try:
        n = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + n]).get("__metadata__") or {}
        return load(data), dict(metadata)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise CheckpointError(f"The {name} is corrupt: {exc}.", hint="Resume from another checkpoint or retrain.") from exc


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
    return load_into(model, config, tensors, metadata, str(path))


def load_into(model, config: RunConfig, tensors: dict[str, torch.Tensor], metadata: dict[str, str],
              name: str) -> dict[str, str]:
    """Put a checkpoint's tensors into ``model`` after checking they belong to ``config``'s model."""
    if metadata.get("model_identity") != model_identity(config) or metadata.get("layout") != model.layout.fingerprint():
        raise CheckpointError(
            f"Checkpoint {name} was trained with a different model config (D={metadata.get('D')}, "
            f"d={metadata.get('d')}) than this one (D={model.D}, d={model.d}).",
            hint="Use the run's own manifest config, or start a new run in another --out directory.",
        )
    try:
        model.load_hypothesis(tensors)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"Checkpoint {name} does not fit the model: {exc}.") from exc
    return metadata
