"""Interrupt training anywhere (Ctrl-C, any KeyboardInterrupt, SIGKILL-like loss of the process), resume: the
bits of an uninterrupted run, the same best step, every metrics event exactly once."""

from __future__ import annotations

import json
import os
import signal
import shutil

import pytest
import torch

import sublora.core.train as train_module
from sublora.core.errors import RunDirError, RunInterrupted, TrainingError
from sublora.core.subspace import SubspaceModel
from sublora.core.train import train

TIMING = ("elapsed", "tokens_per_s")  # the only fields allowed to differ


@pytest.fixture(scope="module")
def config(make_tiny_config):
    # eval and checkpoint intervals out of step with each other, so a commit often lies between evaluations
    return make_tiny_config(train={"max_steps": 8, "eval_interval": 2, "checkpoint_interval": 3, "log_interval": 1})


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    train(config, out)
    return out


def _sigint():
    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C: the handler raises KeyboardInterrupt in this thread


class _At:
    """Callbacks that interrupt at one point of one step."""

    def __init__(self, where, step, how=_sigint):
        self.where, self.step, self.how = where, step, how

    def on_start(self, start_step, max_steps):
        if self.where == "start":
            self.how()

    def on_step(self, step, metrics):
        if self.where == "step" and step == self.step:
            self.how()

    def on_eval(self, step, metrics):
        if self.where == "eval" and step == self.step:
            self.how()

    def on_end(self): pass


def _events(run):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _state(run):
    state = torch.load(run / "checkpoint" / "state.pt", weights_only=True)
    state.pop("elapsed"), state.pop("metrics_size")  # timings: the log holds elapsed seconds and tokens/s
    return state


def _same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if key == "optimizer":
            for pa, pb in zip(a[key]["state"].values(), b[key]["state"].values()):
                assert all(torch.equal(pa[k], pb[k]) for k in pa), key
            assert a[key]["param_groups"] == b[key]["param_groups"]
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def assert_identical(run, reference):
    for name in ("last", "best"):
        assert (run / "checkpoint" / f"{name}.safetensors").read_bytes() == \
            (reference / "checkpoint" / f"{name}.safetensors").read_bytes(), name
    _same_state(_state(run), _state(reference))
    assert _events(run) == _events(reference)  # each event once, none lost
    manifest = json.loads((run / "manifest.json").read_text())
    expected = json.loads((reference / "manifest.json").read_text())
    assert manifest["status"] == "trained"
    assert manifest["training"]["best_val_loss"] == expected["training"]["best_val_loss"]


def _interrupted(config, run, callbacks):
    with pytest.raises(KeyboardInterrupt) as info:
        train(config, run, callbacks=callbacks)
    return info.value


@pytest.mark.parametrize("where,step", [("start", 0), ("step", 1), ("step", 3), ("step", 4), ("eval", 2), ("eval", 6),
                                        ("step", 8), ("eval", 8)])
def test_sigint_at_any_point_resumes_bit_identically(config, reference, tmp_path, where, step):
    run = tmp_path / "run"
    stop = _interrupted(config, run, _At(where, step))
    assert isinstance(stop, RunInterrupted) and "rerun the same command to resume" in str(stop)
    assert json.loads((run / "manifest.json").read_text())["status"] == "training"
    lines = (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []
    assert all(json.loads(line)["step"] <= stop.step for line in lines)  # nothing logged past the saved point
    result = train(config, run)
    assert result.finished and result.steps == 8
    assert_identical(run, reference)


def test_sigint_in_the_middle_of_an_update_replays_that_step(config, reference, tmp_path, monkeypatch):
    """Ctrl-C after some micro-batches were drawn and gradients accumulated, before the optimizer step."""
    from sublora.core.data import PreparedData

    run = tmp_path / "run"
    calls = {"n": 0}
    original = PreparedData.get_batch

    def get_batch(self, split, *args, **kwargs):
        if split == "train":
            calls["n"] += 1
            if calls["n"] == 7:  # steps 1, 2: 2 micro-batches each, the eval at step 2: 1; so the 2nd of step 3
                _sigint()
        return original(self, split, *args, **kwargs)

    accum = config.model_copy(update={"train": config.train.model_copy(update={"grad_accum": 2})})
    full = tmp_path / "full"
    train(accum, full)
    monkeypatch.setattr(PreparedData, "get_batch", get_batch)
    stop = _interrupted(accum, run, None)
    assert stop.step == 2
    monkeypatch.setattr(PreparedData, "get_batch", original)
    train(accum, run)
    assert_identical(run, full)


def test_sigint_while_a_checkpoint_is_written_resumes_bit_identically(config, reference, tmp_path, monkeypatch):
    """Ctrl-C between state.pt and the checkpoint files (the commit waits for the rest, then stops)."""
    run = tmp_path / "run"
    original = train_module.write_atomic
    seen = {"n": 0}

    def write_atomic(path, data):
        seen["n"] += 1
        if seen["n"] == 3:  # last.safetensors of the 2nd commit (step 6)
            _sigint()
        return original(path, data)

    monkeypatch.setattr(train_module, "write_atomic", write_atomic)
    stop = _interrupted(config, run, None)
    assert stop.step == 6
    monkeypatch.setattr(train_module, "write_atomic", original)
    train(config, run)
    assert_identical(run, reference)


@pytest.mark.parametrize("where,step", [("step", 3), ("eval", 4)])
def test_a_keyboard_interrupt_raised_by_code_is_as_safe_as_a_signal(config, reference, tmp_path, where, step):
    def raise_():
        raise KeyboardInterrupt

    run = tmp_path / "run"
    _interrupted(config, run, _At(where, step, raise_))
    train(config, run)
    assert_identical(run, reference)


def test_losing_the_process_between_commits_resumes_from_the_last_commit(config, reference, tmp_path):
    """As after SIGKILL: files past the last commit (metrics lines, a half-written checkpoint) are put right."""
    run = tmp_path / "run"
    _interrupted(config, run, _At("step", 4))  # committed at step 4
    with (run / "metrics.jsonl").open("a") as fh:  # lines of steps the dead process never committed,
        fh.write(json.dumps({"event": "train", "step": 5, "loss": 1.0}) + "\n")
        fh.write('{"event": "eval", "st')  # the last one cut mid-write
    (run / "checkpoint" / "best.safetensors").write_bytes(b"half a file")
    train(config, run)
    assert_identical(run, reference)


def test_interrupted_twice_then_resumed(config, reference, tmp_path):
    run = tmp_path / "run"
    _interrupted(config, run, _At("eval", 2))
    _interrupted(config, run, _At("step", 5))
    train(config, run)
    assert_identical(run, reference)


def test_dropout_runs_are_reproducible_and_resume_exactly(make_tiny_config, tmp_path):
    config = make_tiny_config(model={"dropout": 0.2}, train={"max_steps": 6, "log_interval": 1})
    train(config, tmp_path / "a")
    train(config, tmp_path / "b")
    assert_identical(tmp_path / "b", tmp_path / "a")
    _interrupted(config, tmp_path / "c", _At("step", 4))
    train(config, tmp_path / "c")
    assert_identical(tmp_path / "c", tmp_path / "a")


def test_identical_runs_write_identical_files(config, reference, tmp_path):
    """safetensors orders its metadata at random; the checkpoint header is written sorted."""
    from sublora.core.checkpoint import checkpoint_bytes, parse_checkpoint
    from sublora.core.train import load_trained

    model, cfg, _ = load_trained(reference)
    first = checkpoint_bytes(model, cfg, 8, 1.5)
    assert all(checkpoint_bytes(model, cfg, 8, 1.5) == first for _ in range(5))
    tensors, metadata = parse_checkpoint(first)
    assert metadata["step"] == "8" and torch.equal(tensors["w"], model.w.detach())
    n = int.from_bytes(first[:8], "little")
    assert (8 + n) % 8 == 0  # the tensor data stays aligned


def test_a_run_that_never_completed_a_step_takes_new_settings(config, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _interrupted(config, run, _At("start", 0))
    other = config.model_copy(update={"train": config.train.model_copy(update={"lr": 1e-3})})
    assert train(other, run).finished  # nothing to keep: starts again with the new settings

    nan = tmp_path / "nan"
    with monkeypatch.context() as m:
        m.setattr(SubspaceModel, "loss", lambda self, x, y, theta=None: theta.sum() * float("nan"))
        with pytest.raises(TrainingError, match="at step 0"):
            train(config, nan)
    assert train(other, nan).finished


def test_an_interrupted_run_refuses_other_settings_by_name_and_accepts_neutral_ones(config, tmp_path):
    run = tmp_path / "run"
    _interrupted(config, run, _At("step", 4))
    for update, field in (({"lr": 1e-3}, "train.lr"), ({"max_steps": 20}, "train.max_steps"),
                          ({"threads": 2}, "train.threads"), ({"eval_interval": 4}, "train.eval_interval")):
        other = config.model_copy(update={"train": config.train.model_copy(update=update)})
        with pytest.raises(RunDirError, match=f"different config: {field}"):
            train(other, run)
    neutral = config.model_copy(update={"train": config.train.model_copy(update={"checkpoint_interval": 5,
                                                                                 "log_interval": 2})})
    assert train(neutral, run).finished


def test_a_finished_run_names_the_settings_it_was_trained_with(config, reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    other = config.model_copy(update={"sublora": config.sublora.model_copy(update={"seed": 1})})
    with pytest.raises(RunDirError, match=r"finished run .*sublora.seed 0 -> 1"):
        train(other, run)


def test_a_damaged_state_is_a_clear_error(config, reference, tmp_path):
    from sublora.core.errors import CheckpointError

    run = tmp_path / "run"
    _interrupted(config, run, _At("step", 4))
    state = run / "checkpoint" / "state.pt"
    state.write_bytes(state.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="damaged") as info:
        train(config, run)
    assert "restart this run from step 0" in info.value.hint
