"""Training on several processes (issue 12.1) and the training side of the GPU path (12.3).

2 gloo processes train what 1 process trains with the same global accumulation (to float tolerance),
only rank 0 writes, a dead rank stops the run with one clear error and a valid checkpoint that resumes
on another number of processes; bad --nproc / --device values are refused before any work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file

from sublora.core import distributed
from sublora.core.checkpoint import training_identity
from sublora.core.errors import ConfigError
from sublora.core.train import train

# grad_accum is the global number of micro-batches per step; dropout on: its masks follow the micro-batch
SETTINGS = {"model": {"dropout": 0.1},
            "train": {"max_steps": 6, "grad_accum": 2, "checkpoint_interval": 3, "eval_interval": 3,
                      "log_interval": 1, "threads": 1, "device": "cpu"}}


@pytest.fixture(scope="module")
def config(make_tiny_config):
    return make_tiny_config(**SETTINGS)


@pytest.fixture(scope="module")
def one_process(config, tmp_path_factory):
    """The reference: one process, the same config (grad_accum 2 micro-batches per step)."""
    run = tmp_path_factory.mktemp("one") / "run"
    train(config, run)
    return run


def _cli(config, out, *extra, env=None):
    """`sublora train --config FILE --out OUT EXTRA` in a subprocess (each rank a fresh interpreter)."""
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sublora.cli", "train", "--config", str(path), "--out", str(out),
                           *extra], capture_output=True, text=True, env=env, timeout=300)


def _w(run):
    return load_file(str(run / "checkpoint" / "last.safetensors"))["w"]


def _events(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(config, one_process, tmp_path):
    run = tmp_path / "run"
    result = _cli(config, run, "--nproc", "2")
    assert result.returncode == 0, result.stderr
    torch.testing.assert_close(_w(run), _w(one_process), rtol=1e-5, atol=1e-6)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["device"] == "cpu" and manifest["dtype"] == "float32"
    assert manifest["placements"] == [{"from_step": 0, "world_size": 2, "device": "cpu", "dtype": "float32",
                                       "backend": "gloo"}]
    d = config.sublora.intrinsic_dim  # rdkron owns no trainable tensors: w's gradient + the step's loss
    assert manifest["allreduce"]["bytes_per_step"] == 4 * (d + 1)
    assert manifest["training"]["allreduce_bytes"] == 6 * 4 * (d + 1)
    # rank 0 alone logs: every event once, as the one-process run logs them
    ours, reference = _events(run), _events(one_process)
    assert [(e["event"], e["step"]) for e in ours] == [(e["event"], e["step"]) for e in reference]
    for a, b in zip(ours, reference):
        for key in ("loss", "val_loss", "train_loss"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-5)


@pytest.mark.slow
def test_a_dead_rank_stops_the_run_and_it_resumes_on_one_process(config, one_process, tmp_path):
    run = tmp_path / "run"
    result = _cli(config, run, "--nproc", "2", env={distributed.FAIL_ENV: "1:4"})  # rank 1 dies before step 5
    assert result.returncode == 7, result.stderr
    assert "rank 1 stopped without an error report" in result.stderr
    assert "the last checkpoint (step 4)" in result.stderr and "is valid" in result.stderr
    assert "Traceback" not in result.stderr  # one clear error, not torchrun's ChildFailedError
    assert distributed.saved_step(run) == 4  # rank 0 saved the last step every rank finished

    train(config, run)  # the same run, now on one process
    torch.testing.assert_close(_w(run), _w(one_process), rtol=1e-5, atol=1e-6)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["world_size"] == 1 and manifest["status"] == "trained"
    assert [(p["from_step"], p["world_size"]) for p in manifest["placements"]] == [(0, 2), (4, 1)]
    placement = [e for e in _events(run) if e["event"] == "placement"]
    assert len(placement) == 1 and placement[0]["step"] == 4 and placement[0]["previous"]["world_size"] == 2


def test_nproc_beyond_the_machine_is_refused_before_any_work(tiny_config, tmp_path):
    from typer.testing import CliRunner

    from sublora.cli.app import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config.to_dict()))
    have, what = distributed.available("cpu")
    result = CliRunner().invoke(app, ["train", "--config", str(path), "--out", str(tmp_path / "run"), "--device", "cpu",
                                      "--nproc", str(have + 1)])
    assert isinstance(result.exception, ConfigError)  # `sublora` exits 2 with it (the CLI's error handler)
    assert f"--nproc {have + 1} is more than the {have} {what}" in str(result.exception)
    assert not (tmp_path / "run").exists()


def test_grad_accum_must_split_over_the_processes():
    assert distributed.check_accum(4, 2) == 2
    with pytest.raises(ConfigError, match=r"grad_accum \(3\).*multiple of the number of processes \(2\)"):
        distributed.check_accum(3, 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_is_refused(make_tiny_config, tmp_path):
    config = make_tiny_config(train={"device": "cuda"})
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        train(config, tmp_path / "run")
    assert distributed.resolve_device("auto") == torch.device("cpu")
    assert distributed.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_runs_from_before_device_and_dtype_keep_their_training_identity(config):
    """Checkpoints hold training_identity; a run's config.yaml from before train.device/dtype does not name them."""
    import hashlib

    from sublora.core.checkpoint import ADDED_LATER, TRAINING_NEUTRAL_FIELDS

    assert ADDED_LATER["train"] == {"dtype": "auto"}
    data = config.model_dump(mode="json", exclude=TRAINING_NEUTRAL_FIELDS)
    for section, fields in ADDED_LATER.items():  # what the identity of such a run was computed from
        for name in fields:
            data[section].pop(name)
    assert training_identity(config) == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    bf16 = config.model_copy(update={"train": config.train.model_copy(update={"dtype": "bfloat16"})})
    assert training_identity(bf16) != training_identity(config)  # dtype changes what training produces
    moved = config.model_copy(update={"train": config.train.model_copy(update={"device": "auto"})})
    assert training_identity(moved) == training_identity(config)  # a run may resume on another device


@pytest.mark.parametrize("impl", ["hf", "lean"])
def test_bfloat16_autocast_trains_on_cpu(make_tiny_config, tmp_path, one_process, impl):
    """``train.dtype=bfloat16`` (what ``auto`` picks on a GPU) trains each model implementation on the CPU
    too: recorded in the manifest, w float32 and finite, losses those of float32 training to bf16 precision."""
    config = make_tiny_config(**{**SETTINGS, "model": {**SETTINGS["model"], "impl": impl},
                                 "train": {**SETTINGS["train"], "dtype": "bfloat16"}})
    assert train(config, tmp_path / "run").finished
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["dtype"] == "bfloat16"
    w = _w(tmp_path / "run")
    assert w.dtype == torch.float32 and torch.isfinite(w).all() and w.abs().max() > 0
    losses = [e["loss"] for e in _events(tmp_path / "run") if e.get("event") == "train"]
    reference = [e["loss"] for e in _events(one_process) if e.get("event") == "train"]
    assert len(losses) == len(reference) == 6
    assert losses == pytest.approx(reference, rel=2e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_records_device_and_dtype(make_tiny_config, tmp_path):
    config = make_tiny_config(train={"device": "cuda", "dtype": "bfloat16", "max_steps": 3})
    assert train(config, tmp_path / "run").finished
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["device"] == "cuda" and manifest["dtype"] == "bfloat16"
    assert torch.isfinite(_w(tmp_path / "run")).all()
