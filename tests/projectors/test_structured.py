"""The structured A/B projector: fixed split, uniform = base, learned gates (math, gradients, distinct seeds)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sublora.core.errors import ConfigError
from sublora.core.layout import ParamLayout
from sublora.core.registry import registry
from sublora.core.subspace import SubspaceModel
from sublora.core.testing import build_projector, check_contract, make_layout, materialize

torch.set_num_threads(1)

VARIANTS = ("uniform", "fixed", "learned")


def config(spec: str, **options):
    return registry("projector").config(spec, options)


def rows_of(layout: ParamLayout, keep) -> torch.Tensor:
    """Boolean mask over theta of the slots for which keep(slot) holds."""
    mask = torch.zeros(layout.D, dtype=torch.bool)
    for s in layout.slots:
        if keep(s):
            mask[s.offset : s.offset + s.numel] = True
    return mask


@pytest.mark.parametrize("variant", VARIANTS)
def test_contract(variant):
    check_contract(f"structured:{variant}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_mode_starts_at_theta0(variant):
    """SubspaceModel starts w at 0; no mode adds an offset of its own (the extension's trap 2)."""
    projector = build_projector(f"structured:{variant}", 400, 36)
    assert not projector(torch.zeros(36)).any()


# --- fixed ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("d,ratio", [(36, 0.5), (37, 0.2), (37, 0.8), (23, 0.5)])
def test_fixed_split_sizes(d, ratio):
    projector = build_projector(config("structured:fixed", allocation_ratio=ratio), 400, d)
    d_B = math.floor(d * ratio)
    assert projector.split == {"A": d - d_B, "B": d_B}
    report = projector.report()
    assert (report["d_A"], report["d_B"]) == (d - d_B, d_B)
    assert set(report["gammas"]) == {"h.0", "h.1", "other"} and report["gammas"]["h.0"] == d_B / d


def test_fixed_first_slice_moves_only_A_and_the_rest_only_B():
    layout = make_layout(400)
    projector = build_projector(config("structured:fixed", allocation_ratio=0.25), 400, 36)
    d_A = projector.split["A"]
    assert d_A == 27
    P = materialize(projector)  # (D, d)
    B_rows = rows_of(layout, lambda s: s.group == "lora_B")
    A_rows = ~B_rows  # lora_A and the misc tensor (ln_f) share the A side
    assert not P[B_rows, :d_A].any() and not P[A_rows, d_A:].any()
    assert P[A_rows, :d_A].abs().sum(1).gt(0).all() and P[B_rows, d_A:].abs().sum(1).gt(0).all()


def test_fixed_sides_without_tensors_or_coordinates():
    only_A = ParamLayout.from_named_shapes([("transformer.h.0.lora_A.weight", (4, 10)), ("ln_f.weight", (10,))])
    projector = config("structured:fixed").build(only_A, 12, 0)
    assert projector.split == {"A": 12, "B": 0}  # nothing to drive on the B side: no coordinate wasted there
    frozen_B = build_projector(config("structured:fixed", allocation_ratio=0.0), 400, 36)
    assert frozen_B.split == {"A": 36, "B": 0} and frozen_B.covers_all_coordinates is False
    B_rows = rows_of(make_layout(400), lambda s: s.group == "lora_B")
    assert not materialize(frozen_B)[B_rows].any()


# --- uniform --------------------------------------------------------------------------------------


@pytest.mark.parametrize("base", ["rdkron:qr", "dense"])
def test_uniform_is_the_base_projector_exactly(base):
    structured = build_projector(config("structured:uniform", base=base), 437, 23, seed=3)
    plain = build_projector(base, 437, 23, seed=3)
    w = torch.randn(23, generator=torch.Generator().manual_seed(0))
    assert torch.equal(structured(w), plain(w))
    assert structured.report() == plain.report() and not list(structured.parameters())


# --- learned --------------------------------------------------------------------------------------


def learned(D=400, d=36, gates=(0.3, -1.2, 2.0), **options):
    projector = build_projector(config("structured:learned", **options), D, d)
    with torch.no_grad():
        projector.gates.copy_(torch.tensor(gates))
    return projector


def test_learned_mask_matches_an_explicit_computation():
    projector = learned(steepness=3.0)
    d, C = projector.d, 3.0
    for l, theta in enumerate((0.3, -1.2, 2.0)):
        k = d / (1 + math.exp(-theta))
        expected = torch.tensor([1 / (1 + math.exp(-C * (k - i - 0.5))) for i in range(d)])
        assert torch.allclose(projector.masks()[l], expected, atol=1e-6)
        assert abs(projector.masks()[l].sum().item() - k) < 0.05  # gamma_l is B's share of w


def test_learned_forward_is_the_documented_composition():
    """theta_{l,B} = sqrt(D_l / D) P_lB H (w * m_l), theta_{l,A} = sqrt(D_l / D) P_lA H (w * (1 - m_l))."""
    projector = learned()
    d, D = projector.d, projector.D
    w = torch.randn(d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    j = torch.arange(d, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(j, j) / d
    H = (torch.cos(angle) + torch.sin(angle)) / math.sqrt(d)  # (d, d) Hartley matrix
    m = projector.masks(torch.float64)
    y = projector(w)
    for unit, part, gate in zip(projector.units, projector.parts, projector.unit_gate):
        share = m[gate] if unit.side == "B" else 1 - m[gate]
        D_l = sum(s.numel for s in projector.layout.slots if (s.layer is None and unit.layer == "other")
                  or f"h.{s.layer}" == unit.layer)
        expected = math.sqrt(D_l / D) * part(H @ (w * share))
        got = torch.cat([y[s.offset : s.offset + s.numel] for s in unit.slots])
        assert torch.allclose(got, expected, atol=1e-10), (unit.layer, unit.side)


def test_learned_gates_receive_gradients():
    projector = learned()
    g = torch.randn(projector.D, generator=torch.Generator().manual_seed(2))
    torch.dot(g, projector(torch.zeros(projector.d))).backward()
    assert not projector.gates.grad.any()  # w = 0: the allocation does not matter yet
    projector.gates.grad = None
    w = torch.randn(projector.d, generator=torch.Generator().manual_seed(3))
    torch.dot(g, projector(w)).backward()
    assert torch.isfinite(projector.gates.grad).all() and (projector.gates.grad != 0).all()


def test_learned_distinct_layers_get_distinct_matrices():
    """The extension built every layer's projector from one seed: all layers got the same matrix (weight tying)."""
    layout = make_layout(400)
    projector = learned(gates=(0.0, 0.0, 0.0))  # equal gates: only the seeds can tell layers apart
    P = materialize(projector)
    for group in ("lora_A", "lora_B"):
        h0, h1 = (P[rows_of(layout, lambda s, l=l: s.layer == l and s.group == group)] for l in (0, 1))
        assert h0.shape == h1.shape
        assert (h0 - h1).norm() > 0.5 * h0.norm(), group
    seeds = [part.seed for part in projector.parts]
    assert len(set(seeds)) == len(seeds) == 6  # (h.0, h.1, other) x (A, B)


def test_learned_report_and_hypothesis():
    projector = learned(gates=(0.0, 1.0, -1.0), gate_lr_scale=7.0)
    report = json.loads(json.dumps(projector.report()))
    assert report["mode"] == "learned"
    expected = {"h.0": 0.5, "h.1": 1 / (1 + math.e**-1), "other": 1 / (1 + math.e)}
    assert report["gammas"] == pytest.approx(expected, abs=1e-6)
    assert report["d_B"]["h.0"] == pytest.approx(18.0) and report["d_A"]["h.0"] == pytest.approx(18.0)
    assert projector.lr_scale == 7.0

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lora_A = nn.Parameter(torch.randn(2, 8))
            self.lora_B = nn.Parameter(torch.zeros(8, 2))

    net = nn.Module()
    net.transformer = nn.Module()
    net.transformer.h = nn.ModuleList([Block(), Block(), Block()])
    model = SubspaceModel(net, config("structured:learned").build, 16, 0)
    hypothesis = model.hypothesis()
    assert set(hypothesis) == {"w", "projector.gates"} and hypothesis["projector.gates"].shape == (3,)
    assert torch.equal(model.flat_params(), model.theta0)


def test_config_rejects_options_its_variant_ignores():
    with pytest.raises(ConfigError, match="allocation_ratio not used by variant 'learned'"):
        config("structured:learned", allocation_ratio=0.3)
    with pytest.raises(ConfigError, match="steepness not used by variant 'uniform'"):
        config("structured", steepness=5.0)
    with pytest.raises(ConfigError, match="cannot be its own base"):
        config("structured:fixed", base="structured:learned")
    assert config("structured").variant == "uniform"


def test_training_logs_the_gradient_norm_of_each_side_of_a_fixed_allocation(make_tiny_config, tmp_path):
    """Seed 004's ||grad_A L|| vs ||grad_B L||: logged with each train step, before clipping; the two sides
    are disjoint blocks of w, so their squares add up to the whole gradient's."""
    import json
    import math

    from sublora.core.train import train

    for spec, sides in (("structured:fixed", True), ("rdkron", False)):
        run = tmp_path / spec.replace(":", "_")
        train(make_tiny_config(sublora={"projector": spec, "intrinsic_dim": 40}), run)
        events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        steps = [e for e in events if e.get("event") == "train"]
        assert steps and all(e["grad_norm"] > 0 for e in steps)
        for e in steps:
            assert ("grad_norm_A" in e and "grad_norm_B" in e) == sides
            if sides:
                assert math.hypot(e["grad_norm_A"], e["grad_norm_B"]) == pytest.approx(e["grad_norm"], rel=1e-9)
