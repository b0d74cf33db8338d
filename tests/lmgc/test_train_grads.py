"""`sublora train --collect-grads N`: the gradients of w and of the LoRA tensors every N steps, in the
gradient-file format, without changing training or its exact resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from sublora.core.train import load_trained, train
from sublora.lmgc.gradients import load_tensors, open_grads

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def config(make_tiny_config):
    # no clipping: the gradient the optimizer steps with is the saved (raw) one
    return make_tiny_config(train={"max_steps": 6, "grad_clip": 0.0, "checkpoint_interval": 3, "collect_grads": 2})


@pytest.fixture(scope="module")
def captured(config, tmp_path_factory):
    """A run through `sublora train --collect-grads 2`, recording w.grad at every optimizer step."""
    from typer.testing import CliRunner

    from sublora.cli.app import app

    seen = []
    original = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["params"][0].grad.detach().clone())  # model.w
        return original(self, *args, **kwargs)

    root = tmp_path_factory.mktemp("collect-grads")
    data = config.to_dict()
    data["train"]["collect_grads"] = None  # given on the command line instead
    (root / "tiny.yaml").write_text(yaml.safe_dump(data))
    torch.optim.AdamW.step = step
    try:
        result = CliRunner().invoke(app, ["train", "--config", str(root / "tiny.yaml"),
                                          "--collect-grads", "2", "--out", str(root / "run")])
    finally:
        torch.optim.AdamW.step = original
    assert result.exit_code == 0, result.output
    return root / "run", seen


def test_w_gradient_is_model_w_grad_at_that_step(captured):
    run, seen = captured
    grads = open_grads(run / "grads")
    assert grads.steps == [2, 4, 6] and len(seen) == 6
    for step in grads.steps:
        np.testing.assert_array_equal(load_tensors(run / "grads", step)["w"], seen[step - 1].numpy(), err_msg=str(step))
    assert json.loads((run / "manifest.json").read_text())["config"]["train"]["collect_grads"] == 2


def test_lora_gradients_are_what_w_gradient_is_projected_from(captured):
    """w's gradient is P^T (the LoRA tensors' gradient), in the layout's (state_dict) order."""
    run, _ = captured
    model, _, _ = load_trained(run)
    grads = open_grads(run / "grads")
    slots = [s.name for s in model.layout.slots]
    assert [n for n, _ in grads.tensors] == ["w", *slots]
    assert [tuple(s) for _, s in grads.tensors[1:]] == [s.shape for s in model.layout.slots]
    saved = load_tensors(run / "grads", 4)
    g_theta = torch.cat([torch.from_numpy(saved[n]).reshape(-1) for n in slots])
    w = model.w.detach().clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model.projector(w), w, g_theta)
    np.testing.assert_allclose(saved["w"], expected.numpy(), rtol=1e-5, atol=1e-7)


def test_final_weights_are_w_and_the_lora_tensors(captured):
    run, _ = captured
    model, _, _ = load_trained(run, which="last")
    weights = load_tensors(run / "grads", "weights")
    np.testing.assert_array_equal(weights["w"], model.w.detach().numpy())
    theta = torch.cat([torch.from_numpy(weights[s.name]).reshape(-1) for s in model.layout.slots])
    torch.testing.assert_close(theta, model.flat_params().detach(), rtol=0, atol=0)


def test_collecting_does_not_change_training(captured, config, tmp_path):
    run, _ = captured
    plain = config.model_copy(update={"train": config.train.model_copy(update={"collect_grads": None})})
    train(plain, tmp_path / "plain")
    for name in ("last", "best"):
        assert (tmp_path / "plain" / "checkpoint" / f"{name}.safetensors").read_bytes() == \
            (run / "checkpoint" / f"{name}.safetensors").read_bytes(), name
    assert not (tmp_path / "plain" / "grads").exists()


def test_an_interrupted_run_resumes_to_the_same_gradient_files(captured, config, tmp_path):
    run, _ = captured

    class StopAt5:
        def on_start(self, start_step, max_steps): pass
        def on_eval(self, step, metrics): pass
        def on_end(self): pass

        def on_step(self, step, metrics):
            if step == 5:  # the commit holds step 5's update; steps 2 and 4 were written
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "r", callbacks=StopAt5())
    assert open_grads(tmp_path / "r" / "grads").steps == [2, 4]
    train(config, tmp_path / "r")
    _same_files(tmp_path / "r", run)


def test_gradients_written_past_the_last_commit_are_dropped_on_resume(captured, config, tmp_path, monkeypatch):
    """Interrupted inside step 4's update, after its gradients were written: the commit is step 3, so the
    resume drops step 4's file (here resumed every 3 steps instead, a change that leaves training as it is)."""
    run, _ = captured
    original, calls = torch.optim.AdamW.step, {"n": 0}

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    with pytest.raises(KeyboardInterrupt) as info:
        train(config, tmp_path / "r")
    assert info.value.step == 3 and open_grads(tmp_path / "r" / "grads").steps == [2, 4]
    monkeypatch.setattr(torch.optim.AdamW, "step", original)
    every3 = config.model_copy(update={"train": config.train.model_copy(update={"collect_grads": 3})})
    train(every3, tmp_path / "r")
    grads = tmp_path / "r" / "grads"
    assert open_grads(grads).steps == [2, 6] and not (grads / "grads_000004.safetensors").exists()
    for name in ("grads_000002.safetensors", "grads_000006.safetensors", "weights_final.safetensors"):
        assert (grads / name).read_bytes() == (run / "grads" / name).read_bytes(), name


def _same_files(run, reference):
    index = open_grads(run / "grads").index
    assert [c["step"] for c in index["checkpoints"]] == [2, 4, 6] and index["weights"]
    for name in ("grads_000002.safetensors", "grads_000004.safetensors", "grads_000006.safetensors",
                 "weights_final.safetensors"):
        assert (run / "grads" / name).read_bytes() == (reference / "grads" / name).read_bytes(), name
    for name in ("last", "best"):
        assert (run / "checkpoint" / f"{name}.safetensors").read_bytes() == \
            (reference / "checkpoint" / f"{name}.safetensors").read_bytes(), name
