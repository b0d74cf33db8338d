"""`collect` writes the documented gradient directory: state_dict order, shapes, the true gradients."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

# skipped without scikit-learn, found without importing it (its import costs each test worker ~1 s)
pytestmark = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                reason="needs scikit-learn (sublora-lmgc[digits])")

from sublora.core.errors import DataError, RunDirError
from sublora.lmgc.collect import collect, load_digits, make_config
from sublora.lmgc.gradients import load_tensors, open_grads, raw_bytes
from sublora.lmgc.networks import build_network

TINY = {"convnet": {"width": 4, "depth": 2}, "mlp": {"width": 8, "depth": 1}}


@pytest.fixture(scope="module", params=["convnet", "mlp"])
def collected(request, tmp_path_factory):
    config = make_config(network=request.param, steps=4, grad_interval=2, batch_size=16, seed=3, **TINY[request.param])
    out = tmp_path_factory.mktemp(request.param) / "grads"
    result = collect(config, out)
    return config, out, result


def test_index_lists_tensors_in_state_dict_order_with_their_shapes(collected):
    config, out, result = collected
    index = json.loads((out / "index.json").read_text())
    net = build_network(config.network, config.width, config.depth, seed=config.seed)
    assert index["format"] == "sublora-grads/1"
    assert [(t["name"], tuple(t["shape"]), t["dtype"]) for t in index["tensors"]] == \
        [(k, tuple(v.shape), "float32") for k, v in net.state_dict().items()]
    assert index["checkpoints"] == [{"step": 2, "file": "grads_000002.safetensors"},
                                    {"step": 4, "file": "grads_000004.safetensors"}]
    assert index["weights"] == "weights_final.safetensors"
    assert index["seeds"]["seed"] == 3 and "torch" in index["versions"] and "sublora-lmgc" in index["versions"]
    assert index["source"]["dataset"] == "sklearn-digits-8x8" and index["source"]["network"] == config.network
    assert 0.0 <= index["source"]["test_accuracy"] <= 1.0
    assert sorted(p.name for p in out.iterdir()) == ["grads_000002.safetensors", "grads_000004.safetensors",
                                                      "index.json", "weights_final.safetensors"]
    assert result.checkpoints == 2 and result.bytes_per_checkpoint == 4 * open_grads(out).numel


def test_gradients_are_the_autograd_gradients_of_the_first_steps(tmp_path):
    """grad_interval 1: step 1's file holds d loss / d param of the first batch at the initial weights."""
    config = make_config(network="convnet", steps=2, grad_interval=1, batch_size=16, seed=5, **TINY["convnet"])
    collect(config, tmp_path / "g")
    net = build_network("convnet", 4, 2, seed=5)
    x, y, _, _ = load_digits()
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(5))[:16]  # the first batch
    torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
    saved = load_tensors(tmp_path / "g", 1)
    assert list(saved) == [n for n, _ in net.named_parameters()]
    for name, p in net.named_parameters():
        np.testing.assert_array_equal(saved[name], p.grad.numpy(), err_msg=name)
    # and raw_bytes is those tensors, float32 little-endian, concatenated in that order
    expected = b"".join(p.grad.numpy().astype("<f4").tobytes() for _, p in net.named_parameters())
    assert raw_bytes(tmp_path / "g", 1) == expected


def test_weights_are_the_final_state_dict_and_runs_are_reproducible(collected, tmp_path):
    config, out, _ = collected
    weights = load_tensors(out, "weights")
    assert list(weights) == [t["name"] for t in open_grads(out).index["tensors"]]
    again = tmp_path / "again"
    collect(config, again)
    for name in ("grads_000002.safetensors", "grads_000004.safetensors", "weights_final.safetensors"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_raw_bytes_selects_checkpoints_and_tensors(collected):
    _, out, _ = collected
    grads = open_grads(out)
    assert raw_bytes(out) == raw_bytes(out, 4) != raw_bytes(out, 2)  # default: the last checkpoint
    assert len(raw_bytes(out, 2)) == 4 * grads.numel
    first = grads.tensors[0][0]
    assert raw_bytes(out, 2, select=[first]) == load_tensors(out, 2)[first].astype("<f4").tobytes()
    with pytest.raises(DataError, match="no checkpoint 3"):
        raw_bytes(out, 3)
    with pytest.raises(DataError, match="No tensor"):
        raw_bytes(out, 2, select=["nothing*"])


def test_a_non_empty_directory_is_refused_unless_forced(tmp_path):
    out = tmp_path / "g"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config = make_config(network="mlp", steps=2, grad_interval=1, batch_size=16, **TINY["mlp"])
    with pytest.raises(RunDirError, match="not empty"):
        collect(config, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written
    collect(config, out, force=True)
    assert (out / "notes.txt").read_text() == "mine" and open_grads(out).steps == [1, 2]


def test_damaged_directories_are_clear_errors(collected, tmp_path):
    _, out, _ = collected
    with pytest.raises(DataError, match="not a gradient directory"):
        open_grads(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text((out / "index.json").read_text())
    (broken / "grads_000002.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(DataError, match="missing"):
        raw_bytes(broken, 4)
    with pytest.raises(DataError):
        raw_bytes(broken, 2)
