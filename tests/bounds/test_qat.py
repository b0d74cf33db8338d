"""Quantization-aware fine-tuning and the paid-for levels search (bounds.md section 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sublora.bounds import certificates
from sublora.bounds import certify as certify_module
from sublora.bounds.certify import certify
from sublora.bounds.verify import verify
from sublora.bounds.qat import fine_tune, requantize, straight_through
from sublora.core.errors import ConfigError
from sublora.core.quantizer import nearest
from sublora.core.train import load_trained, train


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_tiny_config):
    """A tiny trained run (bounded later by each test as it needs)."""
    path = tmp_path_factory.mktemp("qat_run")
    train(make_tiny_config(train={"max_steps": 12}, bound={"qat_steps": 10}), path)  # short QAT: fast tests
    return path


def plain_quantization(config, continuous, levels):
    quantizer = certificates.quantizer_for(config, levels)
    return {name: quantizer.quantize(t.double().numpy(), seed=config.bound.seed + i)
            for i, (name, t) in enumerate(continuous.items())}


def quantized_train_bits(model, data, config, quantized, batches=8):
    """Mean training loss (bits/token) of the model holding ``quantized``, on fixed batches QAT never drew."""
    certificates.load_quantized(model, quantized)
    gen = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        theta = model.flat_params()
        losses = [model.loss(*data.get_batch("train", 16, config.model.block_size, gen), theta).item()
                  for _ in range(batches)]
    return float(np.mean(losses)) / math.log(2.0)


def qat(model, data, config, continuous, plain, **kw):
    settings = {"steps": 20, "lr": 1e-3, "batch_size": 8, "block_size": config.model.block_size, "seed": 0, **kw}
    return fine_tune(model, data, continuous, plain, **settings)


def test_qat_lowers_the_quantized_training_loss_and_is_deterministic(run):
    model, config, data = load_trained(run)
    continuous = {n: t.clone() for n, t in model.hypothesis().items()}
    plain = plain_quantization(config, continuous, levels=5)
    first = qat(model, data, config, continuous, plain)
    again = qat(model, data, config, continuous, plain)

    assert first.losses == again.losses
    for name in plain:
        assert np.array_equal(first.quantized[name].symbols, again.quantized[name].symbols)
        books = (first.quantized[name].codebook, again.quantized[name].codebook)
        assert np.array_equal(books[0].view(np.uint16), books[1].view(np.uint16))
    assert quantized_train_bits(model, data, config, first.quantized) < quantized_train_bits(model, data, config, plain)
    assert torch.equal(continuous["w"], load_trained(run)[0].w.detach())  # the trained w itself is never touched


def test_qat_draws_training_batches_only(run, monkeypatch):
    model, config, data = load_trained(run)
    continuous = {n: t.clone() for n, t in model.hypothesis().items()}
    splits = []
    get_batch = data.get_batch

    def recording(split, *args, **kwargs):
        splits.append(split)
        return get_batch(split, *args, **kwargs)

    monkeypatch.setattr(data, "get_batch", recording)
    qat(model, data, config, continuous, plain_quantization(config, continuous, 5), steps=3)
    assert splits == ["train"] * 3


def test_requantized_file_values_are_nearest_fp16_centroids():
    values = np.array([-1.0, -0.4, 0.05, 0.2, 0.9, 1.1])
    q = requantize(values, np.array([0.95, -0.7, 0.1, 5.0]))  # unsorted; 5.0 is used by nothing
    assert q.codebook.dtype == np.float16 and np.all(np.diff(q.codebook.astype(np.float64)) > 0)
    assert q.codebook.size == 3  # the unused entry is dropped
    assert np.array_equal(q.symbols, nearest(values, q.codebook.astype(np.float64)))


def test_straight_through_gradient_reaches_values_and_codebook():
    """Forward = codebook[nearest]; gradient to the codebook = finite difference; to the values = identity."""
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(40, generator=gen, dtype=torch.float64)
    codebook = torch.tensor([0.8, -1.0, 0.1, -0.3], dtype=torch.float64)  # deliberately unsorted
    weights = torch.randn(40, generator=gen, dtype=torch.float64)

    def f(v, c):
        return (weights * straight_through(v, c) ** 3).sum()

    v, c = values.clone().requires_grad_(True), codebook.clone().requires_grad_(True)
    hard = straight_through(v, c)
    sorted_book, order = torch.sort(codebook)
    expected = sorted_book[torch.from_numpy(nearest(values.numpy(), sorted_book.numpy()))]
    assert torch.equal(hard.detach(), expected)
    f(v, c).backward()

    eps = 1e-6  # far smaller than any value's distance to a cluster edge: assignments do not change
    for j in range(codebook.numel()):
        step = torch.zeros_like(codebook)
        step[j] = eps
        numeric = (f(values, codebook + step) - f(values, codebook - step)) / (2 * eps)
        assert c.grad[j].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-9)
    assert torch.allclose(v.grad, 3 * weights * expected ** 2)  # straight through: d hard / d values = 1
    assert (c.grad != 0).sum() > 1


def test_levels_search_is_free_and_keeps_the_smallest_estimate(run, monkeypatch):
    """The file stores the codebook size, so the prior covers the choice: no bits (docs/bounds.md section 3)."""
    grid = [3, 5, 11]
    cert = certify(run, force=True, overrides={"bound.levels_grid": grid}, charge=True)
    search = cert["searches"]["levels"]
    assert "levels_search" not in cert["extra_breakdown"]
    assert cert["extra_bits"] == pytest.approx(7.0 + math.log2(len(cert["bound_settings"]["alphas"])))
    assert search["bits"] == 0.0 and "stores the codebook size" in search["why_free"]
    assert [c["levels"] for c in search["candidates"]] == grid
    best = min(search["candidates"], key=lambda c: c["estimate"])
    assert search["chosen"] == best["levels"] and cert["code_bits"] == best["code_bits"]
    assert cert["hypothesis"]["w"]["levels"] <= best["levels"]
    assert verify(run)

    # The rule, with estimates fixed by hand: the smallest wins, a tie goes to the earlier candidate.
    estimates = iter([5.0, 4.0, 4.0])  # for levels 3, 5, 11, scored in grid order
    monkeypatch.setattr(certify_module, "_estimate_bound",
                        lambda *args: {"estimate": next(estimates), "empirical": 0.0, "alpha": 0.1})
    cert = certify(run, force=True, overrides={"bound.levels_grid": grid}, charge=True)
    assert cert["searches"]["levels"]["chosen"] == 5


def test_a_single_level_or_an_empty_grid(run):
    cert = certify(run, force=True, overrides={"bound.levels_grid": []}, charge=True)
    assert "levels_search" not in cert["extra_breakdown"] and cert["searches"]["levels"] is None
    cert = certify(run, force=True, overrides={"bound.levels": 7, "bound.levels_grid": [7]}, charge=True)
    assert "levels_search" not in cert["extra_breakdown"] and cert["searches"]["levels"]["chosen"] == 7


def test_asking_for_one_codebook_size_turns_the_search_off(run, make_tiny_config):
    cert = certify(run, force=True, overrides={"bound.levels": 5}, charge=True)
    assert cert["bound_settings"]["levels_grid"] == [] and cert["hypothesis"]["w"]["levels"] <= 5
    assert "levels_search" not in cert["extra_breakdown"]
    assert make_tiny_config(bound={"levels": 5}).bound.levels_grid == []  # a YAML file or a `train` override
    assert make_tiny_config().bound.levels_grid == [11, 16, 24]  # the default searches
    with pytest.raises(ConfigError, match=r"levels=5 is not among levels_grid=\[11, 16\]"):
        make_tiny_config(bound={"levels": 5, "levels_grid": [11, 16]})


def test_verify_passes_with_qat_and_with_a_levels_grid(run):
    cert = certify(run, force=True, overrides={"bound.qat_steps": 5, "bound.qat_lr": 1e-3}, charge=True)
    assert cert["qat"]["steps"] == 5 and cert["qat"]["tensors"] == ["w"]
    assert "quantized_before_qat_train" in cert["losses_bits_per_token"]
    assert verify(run)
    cert = certify(run, force=True, overrides={"bound.qat_steps": 3, "bound.levels_grid": [3, 11]}, charge=True)
    assert cert["qat"] is not None and cert["searches"]["levels"]["chosen"] in (3, 11)
    assert verify(run)


def test_verify_charges_what_the_certificate_was_made_with(run):
    """A certificate from before the levels search (no levels_grid key) still verifies; tampered settings do not."""
    certify(run, force=True, overrides={"bound.levels_grid": []}, charge=True)
    path = run / "certificate.json"
    cert = json.loads(path.read_text())
    del cert["bound_settings"]["levels_grid"]
    path.write_text(json.dumps(cert))
    assert verify(run)
    cert["bound_settings"]["hyper_bits"] = 3.0  # would charge four bits fewer than were paid
    path.write_text(json.dumps(cert))
    with pytest.raises(Exception, match="extra bits"):
        verify(run)


def test_qat_fine_tunes_projector_owned_gates_too(tmp_path, make_tiny_config):
    path = tmp_path / "gated"
    train(make_tiny_config(sublora={"projector": "structured:learned"}), path)
    cert = certify(path, overrides={"bound.qat_steps": 3, "bound.qat_lr": 1e-3}, charge=True)
    assert len(cert["qat"]["tensors"]) > 1 and set(cert["qat"]["tensors"]) == set(cert["hypothesis"])
    assert verify(path)


@pytest.mark.parametrize("override, field", [
    ({"bound.qat_steps": -1}, "qat_steps"), ({"bound.qat_lr": 0.0}, "qat_lr"),
    ({"bound.qat_batch_size": 0}, "qat_batch_size"),
    ({"bound.levels_grid": [1, 11]}, "levels_grid"), ({"bound.levels_grid": [11, 256]}, "levels_grid"),
    ({"bound.levels_grid": [5, 5]}, "levels_grid"), ({"bound.levels_grid": ["many"]}, "levels_grid"),
    ({"bound.search_blocks": 0}, "search_blocks"),
])
def test_bad_settings_are_refused_naming_the_field(run, override, field):
    with pytest.raises(ConfigError, match=f"bound.{field}"):
        certify(run, force=True, overrides=override)
