"""nola: each tensor moves by a mix of its own random basis; how d is split; scale; no weight tying."""

from __future__ import annotations

import pytest
import torch

from sublora.core.layout import ParamLayout
from sublora.core.registry import registry
from sublora.core.testing import (
    MEMORY_SIZE,
    build_projector,
    check_contract,
    check_projector,
    make_layout,
    materialize,
    stored_numbers,
)
from sublora.projectors.nola import nola_plan

torch.set_num_threads(1)

# GPT-2-like LoRA-only layout: 3 modules (2 blocks' c_attn and the head), lora_A (r, in), lora_B (out, r)
LORA = ParamLayout.from_named_shapes([
    ("transformer.h.0.attn.c_attn.lora_A.default.weight", (4, 16)),
    ("transformer.h.0.attn.c_attn.lora_B.default.weight", (48, 4)),
    ("transformer.h.1.attn.c_attn.lora_A.default.weight", (4, 16)),
    ("transformer.h.1.attn.c_attn.lora_B.default.weight", (48, 4)),
    ("lm_head.lora_A.default.weight", (4, 16)),
    ("lm_head.lora_B.default.weight", (100, 4)),
])


def nola(**options):
    return registry("projector").config("nola", options)


def modules(layout: ParamLayout) -> dict[str, dict[str, int]]:
    """LoRA module prefix -> {'lora_A': slot index, 'lora_B': slot index}."""
    out: dict[str, dict[str, int]] = {}
    for i, slot in enumerate(layout.slots):
        if slot.group != "misc":
            out.setdefault(slot.name.split(f".{slot.group}.")[0], {})[slot.group] = i
    return out


def test_plan_splits_d_evenly_over_the_tensors():
    assert [t.k for t in nola_plan(LORA, 30)] == [5] * 6  # k = d // (2 * modules)
    plan = nola_plan(make_layout(400), 40)  # 7 tensors (6 LoRA + ln_f): 40 = 5 * 6 + 5 * 5
    assert [t.k for t in plan] == [6, 6, 6, 6, 6, 5, 5]
    assert [len(t.slots) for t in plan] == [1] * 7
    assert [t.col for t in plan] == [0, 6, 12, 18, 24, 30, 35]


def test_plan_shares_a_coefficient_between_neighbours_when_d_is_small():
    plan = nola_plan(make_layout(400), 5)  # fewer coordinates than tensors: 5 groups, k = 1
    assert [len(t.slots) for t in plan] == [1, 1, 2, 1, 2] and [t.k for t in plan] == [1] * 5
    assert [t.slots[0].name for t in nola_plan(make_layout(400), 1)] == [make_layout(400).slots[0].name]
    for D, d in [(400, 5), (400, 1), (30, 3)]:
        check_projector("nola", D, d, scale_seeds=64)


def test_each_update_is_the_mix_of_its_own_basis():
    d = 30
    projector = build_projector("nola", LORA.D, d, seed=2, layout=LORA)
    w = torch.randn(d)
    with torch.no_grad():
        y = projector(w)
    assert set(modules(LORA)) == {"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn", "lm_head"}
    for pair in modules(LORA).values():
        for group in ("lora_A", "lora_B"):
            index = pair[group]
            slot, target = LORA.slots[index], projector.targets[index]
            coefficients = w[target.col : target.col + target.k]  # a_1..a_k (or b_1..b_k)
            basis = projector.basis(index).view(target.k, *slot.shape)  # A_1..A_k, each of the tensor's shape
            expected = sum(c * B for c, B in zip(coefficients, basis))  # sum_i a_i A_i
            got = y[slot.offset : slot.offset + slot.numel].view(slot.shape)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_P_is_block_diagonal_over_the_tensors():
    layout = make_layout(437)
    projector = build_projector("nola", 437, 23, layout=layout)
    P = materialize(projector)
    for t in projector.targets:
        columns = P[:, t.col : t.col + t.k]  # its coefficients move its own rows only
        assert not columns[: t.start].any() and not columns[t.stop :].any()
        assert (columns[t.start : t.stop] != 0).all()


def test_distinct_tensors_get_distinct_bases():
    """No weight tying: the same coefficients in two modules (or in A and B) give unrelated updates."""
    projector = build_projector("nola", LORA.D, 30, layout=LORA)
    bases = [projector.basis(i) for i in range(len(LORA.slots))]
    same_shape = [(0, 2), (0, 4), (2, 4), (1, 3)]  # lora_A of blocks 0, 1 and the head; lora_B of blocks 0, 1
    for i, j in same_shape:
        cos = torch.nn.functional.cosine_similarity(bases[i].flatten(), bases[j].flatten(), dim=0)
        assert abs(cos) < 0.2, (i, j, cos)
    A, B = bases[0].flatten(), bases[1].flatten()[: bases[0].numel()]  # A and B of one module: a shared
    assert abs(torch.nn.functional.cosine_similarity(A, B, dim=0)) < 0.2  # stream would make these prefixes equal
    P = materialize(projector)
    gram = torch.nn.functional.normalize(P, dim=0).T @ torch.nn.functional.normalize(P, dim=0)
    assert (gram - torch.eye(30)).abs().max() < 0.6  # no two columns alike


def test_basis_entries_have_variance_one_over_the_tensor_size():
    layout = ParamLayout.from_named_shapes([("h.0.attn.lora_A", (4, 300)), ("h.0.attn.lora_B", (900, 4))])
    projector = build_projector("nola", layout.D, 200, layout=layout)
    for index, slot in enumerate(layout.slots):
        basis = projector.basis(index)  # (k, N)
        assert basis.shape == (100, slot.numel)
        assert abs(basis.square().mean().item() * slot.numel - 1) < 0.02  # E||P e_j||^2 = 1


def test_chunked_equals_cached():
    D, d = 437, 23
    cached = build_projector("nola", D, d)
    chunked = build_projector(nola(cache_mb=0, chunk_size=1), D, d)
    assert all(b.matrix is not None for b in cached.blocks) and stored_numbers(chunked) == 0
    torch.testing.assert_close(materialize(chunked), materialize(cached), rtol=1e-5, atol=1e-6)
    check_projector(nola(cache_mb=0, chunk_size=1), 400, 40)


def test_bases_are_stored_only_within_cache_mb():
    D, d = MEMORY_SIZE
    plan = nola_plan(make_layout(D), d)
    numbers = sum((t.stop - t.start) * t.k for t in plan)  # about D * d / 7
    assert stored_numbers(build_projector("nola", D, d)) == numbers
    assert stored_numbers(build_projector(nola(cache_mb=numbers * 4 / 2**20 * 0.99), D, d)) == 0  # all or none


@pytest.mark.parametrize("d", [6, 31])
def test_lora_only_layout_meets_the_contract(d):
    check_projector("nola", LORA.D, d, layout=LORA)


def test_fastfood_bases_meet_the_contract():
    check_contract(nola(matrix="fastfood"))
    check_projector(nola(matrix="fastfood"), LORA.D, 31, layout=LORA)


def test_fastfood_bases_are_distinct_mixes_of_fastfood_columns():
    """matrix='fastfood': each tensor moves by a mix of the k columns of its own Fastfood transform."""
    projector = build_projector(nola(matrix="fastfood"), LORA.D, 30, layout=LORA)
    bases = [projector.basis(i) for i in range(len(LORA.slots))]
    for index, slot in enumerate(LORA.slots):
        assert bases[index].shape == (5, slot.numel)
    for i, j in [(0, 2), (0, 4), (2, 4), (1, 3)]:  # same shapes, distinct streams: unrelated bases
        cos = torch.nn.functional.cosine_similarity(bases[i].flatten(), bases[j].flatten(), dim=0)
        assert abs(cos) < 0.3, (i, j, cos)
    w = torch.randn(30)
    with torch.no_grad():
        y = projector(w)
    for index, (slot, t) in enumerate(zip(LORA.slots, projector.targets)):
        expected = w[t.col : t.col + t.k] @ bases[index]
        torch.testing.assert_close(y[slot.offset : slot.offset + slot.numel], expected, rtol=1e-5, atol=1e-6)


def test_fastfood_bases_store_order_D_numbers():
    D, d = MEMORY_SIZE
    assert stored_numbers(build_projector(nola(matrix="fastfood"), D, d)) < 8 * D  # dense bases: ~D d / 7
