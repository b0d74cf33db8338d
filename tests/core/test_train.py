"""Training: bit-for-bit determinism, resume after interruption, refusals, NaN handling."""

from __future__ import annotations

import json

import pytest
import torch

from sublora.core.checkpoint import read_checkpoint
from sublora.core.errors import RunDirError, TrainingError
from sublora.core.subspace import SubspaceModel
from sublora.core.train import lr_at, train


def _w(run_dir, which="last"):
    tensors, meta = read_checkpoint(run_dir / "checkpoint" / f"{which}.safetensors")
    return tensors["w"], meta


def test_same_seed_same_w_bit_for_bit(tiny_config, tmp_path):
    a = train(tiny_config, tmp_path / "a")
    b = train(tiny_config, tmp_path / "b")
    assert a.finished and b.finished and a.steps == 6
    wa, _ = _w(tmp_path / "a")
    wb, _ = _w(tmp_path / "b")
    assert torch.count_nonzero(wa) > 0
    assert torch.equal(wa, wb)
    other = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"seed": 1})})
    train(other, tmp_path / "c")
    assert not torch.equal(wa, _w(tmp_path / "c")[0])


class _InterruptAt:
    def __init__(self, step):
        self.step = step

    def on_start(self, start_step, max_steps): pass
    def on_eval(self, step, metrics): pass
    def on_end(self): pass

    def on_step(self, step, metrics):
        if step == self.step:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "cut", callbacks=_InterruptAt(4))
    manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert manifest["status"] == "training"
    assert _w(tmp_path / "cut")[1]["step"] == "4"
    resumed = train(tiny_config, tmp_path / "cut")
    assert resumed.finished and resumed.steps == 6
    assert torch.equal(_w(tmp_path / "full")[0], _w(tmp_path / "cut")[0])


def test_run_dir_refusals_destroy_nothing(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(RunDirError, match="already holds a finished run"):
        train(tiny_config, run)
    assert before == {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a sublora run directory"):
        train(tiny_config, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_interrupted_run_refuses_another_config(tiny_config, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, tmp_path / "cut", callbacks=_InterruptAt(2))
    other = tiny_config.model_copy(update={"train": tiny_config.train.model_copy(update={"lr": 1e-4})})
    with pytest.raises(RunDirError, match="different config"):
        train(other, tmp_path / "cut")


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(tiny_config, tmp_path, monkeypatch):
    run = tmp_path / "nan"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config, run, callbacks=_InterruptAt(3))
    saved = (run / "checkpoint" / "last.safetensors").read_bytes()
    monkeypatch.setattr(SubspaceModel, "loss", lambda self, x, y, theta=None: (theta.sum() * float("nan")))
    with pytest.raises(TrainingError, match="Loss became nan at step 3"):
        train(tiny_config, run)
    assert (run / "checkpoint" / "last.safetensors").read_bytes() == saved


def test_metrics_and_manifest_are_written(tiny_config, tmp_path):
    train(tiny_config, tmp_path / "r")
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events} == {"train", "eval"}
    assert all(e["loss"] > 0 for e in events if e["event"] == "train")
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "trained"
    assert manifest["seeds"]["sublora.seed"] == tiny_config.sublora.seed
    assert {"torch", "transformers", "peft", "sublora-core"} <= set(manifest["versions"])
    assert manifest["model"]["d"] == 64 and manifest["model"]["D"] > 64
    assert manifest["data"]["config_key"]


def test_lr_schedule_warmup_then_cosine(tiny_config):
    tc = tiny_config.train.model_copy(update={"max_steps": 100, "warmup_steps": 10, "lr": 1.0, "min_lr": 0.1})
    lrs = [lr_at(s, tc) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[100] == pytest.approx(0.1)


def test_loading_a_run_checks_the_data_identity(tiny_config, tmp_path):
    from sublora.core.errors import DataError
    from sublora.core.train import load_trained

    train(tiny_config, tmp_path / "r")
    model, config, data = load_trained(tmp_path / "r")
    assert model.training is False and data.vocab_size == 257
    manifest_path = tmp_path / "r" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["data"]["sha256"] = {"train.bin": "0" * 64, "val.bin": "0" * 64}
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not the data"):
        load_trained(tmp_path / "r")
