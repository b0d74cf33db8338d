"""compress_file / decompress_file: what `sublora lmgc compress` and `decompress` do, as a library.

The input is a raw float32 file (little-endian, any name), a gradient directory (index.json; one
checkpoint: ``checkpoint`` = a step, "weights", or None for the last gradient checkpoint) or one
checkpoint file inside such a directory. Every check runs before anything is written, and the
output is written atomically at the end: a failed command leaves an existing file as it was.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sublora.lmgc import container
from sublora.lmgc.codec import CodecSettings, check_raw, decode, encode, rate
from sublora.lmgc.errors import LmgcError, OutputExistsError, PriorError
from sublora.lmgc.prior import DEFAULT_WINDOW, Prior, load_prior

Progress = Callable[[int, int], None]


def read_input(path: str | Path, checkpoint: int | str | None = None) -> tuple[bytes, dict[str, Any]]:
    """(raw float32 bytes, what they are) of a raw file, a gradient directory or a checkpoint file in one."""
    from sublora.lmgc.gradients import INDEX, open_grads, raw_bytes

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    grads_dir, step = None, checkpoint
    if path.is_dir():
        grads_dir = path
    elif path.suffix == ".safetensors" and (path.parent / INDEX).is_file():
        grads = open_grads(path.parent)
        files = {e["file"]: e["step"] for e in grads.index["checkpoints"]}
        if grads.index.get("weights"):
            files[grads.index["weights"]] = "weights"
        if path.name in files:
            if checkpoint is not None:
                raise LmgcError(f"{path} is one checkpoint already; --checkpoint {checkpoint} means nothing here.",
                                hint="Drop --checkpoint, or give the directory with --checkpoint.")
            grads_dir, step = path.parent, files[path.name]
    if grads_dir is not None:
        grads = open_grads(grads_dir)
        if step is None:
            step = grads.steps[-1] if grads.steps else "weights"
        raw = raw_bytes(grads_dir, step)
        info = {"kind": "gradients" if step != "weights" else "weights", "path": str(grads_dir.resolve()),
                "checkpoint": step, "source": grads.source}
        name = f"{grads_dir} checkpoint {step}"
    else:
        if checkpoint is not None:
            raise LmgcError(f"{path} is a raw file: --checkpoint applies to gradient directories.",
                            hint="Drop --checkpoint.")
        raw = path.read_bytes()
        info = {"kind": "raw-float32", "path": str(path.resolve()), "name": path.name}
        name = str(path)
    check_raw(raw, name)
    return raw, info


def _check_out(out: Path, force: bool, *inputs: Path) -> None:
    if out.is_dir():
        raise OutputExistsError(f"--out {out} is a directory.", hint="Give a file path.")
    if any(out.resolve() == p.resolve() for p in inputs):
        raise OutputExistsError(f"--out {out} is the input file.", hint="Write the output somewhere else.")
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists.", hint="Pass --force to replace it, or choose another --out.")


def compress_file(path: str | Path, out: str | Path, prior: str | Path | Prior, settings: CodecSettings | None = None,
                  *, checkpoint: int | str | None = None, threads: int = 1, dtype: str = "float32",
                  default_window: int = DEFAULT_WINDOW, force: bool = False,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Code ``path`` into the .lmgc file ``out``; returns the numbers (rates, bits, speed).

    The input and ``out`` are checked before the prior is loaded (seconds for torch and transformers).
    A window left at None is ``default_window`` cut to the prior's context.
    """
    import torch

    from sublora.core.checkpoint import write_atomic

    out = Path(out)
    _check_out(out, force, Path(path))
    settings = settings or CodecSettings()
    raw, info = read_input(path, checkpoint)
    if not isinstance(prior, Prior):
        prior = load_prior(prior, dtype=dtype)
    if settings.window is None:
        settings = settings.model_copy(update={"window": prior.window(None, default_window)})
    torch.set_num_threads(threads)
    header, words = encode(raw, prior, settings, progress)
    header.update(input=info, prior={"spec": prior.spec, "kind": prior.kind, "identity": prior.identity,
                                     "dtype": prior.dtype, "vocab_size": prior.vocab_size,
                                     "describe": prior.describe(), "zero_shot": prior.saw.get("zero_shot")},
                  environment=container.environment(threads))
    data = container.pack(header, words)
    write_atomic(out, data)
    return {**summary(header, len(data)), "prior": prior.describe()}


def summary(header: dict[str, Any], file_bytes: int | None = None) -> dict[str, Any]:
    """The numbers of one coded stream: rates (payload and whole file), bits, speed."""
    raw, payload = header["raw_bytes"], 4 * (header["bits"]["coded"] // 32)
    seconds = header.get("encode_seconds") or float("nan")
    return {
        "raw_bytes": raw,
        "payload_bytes": payload,
        "file_bytes": file_bytes,
        "rate": rate(payload, raw),
        "file_rate": rate(file_bytes, raw) if file_bytes else None,
        "ideal_bytes": header["bits"]["ideal"] / 8,
        "ideal_rate": rate(header["bits"]["ideal"] / 8, raw),
        "overhead_bytes": payload - header["bits"]["ideal"] / 8,
        "tokens": header["tokens"],
        "tokens_per_float": header["tokens"] / (raw / 4),
        "windows": header["windows"],
        "window": header["window"],
        "encode_seconds": seconds,
        "tokens_per_second": header["tokens"] / seconds,
        "mb_per_hour": raw / 1e6 / seconds * 3600,
    }


def decompress_file(path: str | Path, out: str | Path, prior: str | Path | Prior | None = None, *,
                    force: bool = False, allow_mismatch: bool = False,
                    progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild the exact bytes coded in ``path`` into ``out`` (sha256 checked); returns timing and warnings."""
    import torch

    from sublora.core.checkpoint import write_atomic

    path, out = Path(path), Path(out)
    _check_out(out, force, path)
    header, words = container.read(path)
    threads = int(header["environment"]["threads"])
    warnings = container.check_environment(header["environment"], container.environment(threads), allow_mismatch)
    if prior is None:
        try:
            prior = load_prior(header["prior"]["spec"], dtype=header["prior"]["dtype"])
        except PriorError as exc:
            raise PriorError(f"The prior named in {path}'s header cannot be loaded here: {exc.message}",
                             hint="Pass --prior with the same prior where it lives on this machine (its identity "
                             "is checked).") from exc
    elif not isinstance(prior, Prior):
        prior = load_prior(prior, dtype=header["prior"]["dtype"])
    container.check_prior(header, prior)
    torch.set_num_threads(threads)
    start = time.perf_counter()
    raw = decode(header, words, prior, progress)
    seconds = time.perf_counter() - start
    write_atomic(out, raw)
    return {"raw_bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "decode_seconds": seconds,
            "tokens": header["tokens"], "tokens_per_second": header["tokens"] / seconds if seconds else None,
            "warnings": warnings, "prior": prior.describe(), "input": header.get("input", {})}
