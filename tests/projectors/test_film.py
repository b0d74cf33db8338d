"""film: dense on the matching coordinates only; film:rdkron = (rdkron:qr + film) / sqrt(2), or rdkron:qr alone."""

from __future__ import annotations

import math

import pytest
import torch

from sublora.core.errors import ConfigError
from sublora.core.layout import ParamLayout
from sublora.core.registry import registry
from sublora.core.testing import build_projector, check_contract, check_projector, make_layout, materialize, stored_numbers
from sublora.projectors.film import film_slots

torch.set_num_threads(1)

NAMES = [  # (name, shape, FiLM coordinate under the default patterns?)
    ("transformer.h.0.attn.c_attn.lora_A.default.weight", (4, 20), False),
    ("transformer.h.0.ln_1.weight", (20,), True),
    ("transformer.h.0.mlp.c_fc.lora_A.default.weight", (4, 20), False),  # GPT-2's MLP, not a classifier
    ("transformer.h.0.mlp.c_fc.lora_B.default.weight", (80, 4), False),
    ("encoder.layer.0.LayerNorm.weight", (20,), True),
    ("bn1.weight", (8,), True),
    ("fc.weight", (10, 20), True),
    ("classifier.bias", (10,), True),
    ("lm_head.lora_B.default.weight", (50, 4), False),
]
LAYOUT = ParamLayout.from_named_shapes([(name, shape) for name, shape, _ in NAMES])


def film(variant: str | None = None, **options):
    return registry("projector").config("film" if variant is None else f"film:{variant}", options)


def test_default_patterns_match_norm_and_classifier_tensors_only():
    assert film_slots(LAYOUT, film().patterns) == [m for _, _, m in NAMES]


def test_film_touches_only_the_matching_coordinates():
    d = 30
    projector = build_projector(film(), LAYOUT.D, d, layout=LAYOUT)
    P = materialize(projector)  # (D, d)
    rows = torch.cat([torch.full((s.numel,), m) for s, (_, _, m) in zip(LAYOUT.slots, NAMES)])
    assert not P[~rows].any()  # zero outside S
    assert (P[rows] != 0).all()  # dense on S
    torch.testing.assert_close(P[rows], projector.film.rows(0, int(rows.sum())))  # G / sqrt(|S|), in layout order
    assert projector.report() == {"film_tensors": 5, "film_coordinates": int(rows.sum())}


def test_film_entries_have_variance_one_over_S():
    D, d = 2000, 400
    layout = ParamLayout.from_named_shapes([("h.0.attn.lora_A", (4, 250)), ("ln_f.weight", (1000,))])
    P = materialize(build_projector(film(), D, d, layout=layout))
    assert abs(P[1000:].square().mean().item() * 1000 - 1) < 0.02  # E[P^T P] = I
    assert not P[:1000].any()


@pytest.mark.parametrize("D,d", [(400, 36), (437, 23), (30, 50)])
def test_film_rdkron_is_the_scaled_sum_exactly(D, d):
    w = torch.randn(d)
    with torch.no_grad():
        both = build_projector(film("rdkron"), D, d, seed=3)(w)
        kron = build_projector("rdkron:qr", D, d, seed=3)(w)
        alone = build_projector(film(), D, d, seed=3)(w)
    assert torch.equal(both, (kron + alone) / math.sqrt(2))


def test_film_rdkron_without_film_coordinates_is_rdkron_qr():
    D, d = 400, 36
    config = film("rdkron", patterns=["no-such-tensor"])
    projector = build_projector(config, D, d, seed=5)
    assert projector.film is None and projector.report()["film_coordinates"] == 0
    w = torch.randn(d)
    with torch.no_grad():
        assert torch.equal(projector(w), build_projector("rdkron:qr", D, d, seed=5)(w))  # no 1/sqrt(2)
    check_projector(config, D, d)


def test_film_without_film_coordinates_is_an_error():
    layout = ParamLayout.from_named_shapes([("h.0.attn.lora_A", (4, 100))])  # LoRA only, as sublora's default
    with pytest.raises(ConfigError, match=r"no trainable tensor name matches patterns \['lm_head'\]") as info:
        build_projector(film(patterns=["lm_head"]), 400, 36, layout=layout)
    assert isinstance(info.value, ValueError) and "film:rdkron" in str(info.value)


def test_film_and_kron_draw_from_disjoint_random_streams():
    projector = build_projector(film("rdkron"), 400, 36, seed=0)
    kron_streams = {projector.kron.generator(i).initial_seed() for i in range(1, 5)}
    film_streams = {projector.film.generator(b).initial_seed() for b in range(projector.film.streams)}
    assert not kron_streams & film_streams


def test_patterns_option_selects_other_tensors_and_meets_the_contract():
    config = film(patterns=["lm_head"])  # the LM head's LoRA tensors
    projector = build_projector(config, 400, 36)
    head = [s for s in make_layout(400).slots if s.name.startswith("lm_head")]
    assert projector.report()["film_coordinates"] == sum(s.numel for s in head)
    check_projector(config, 400, 36)


def test_chunked_equals_cached():
    D, d = 420, 36
    cached = build_projector(film("rdkron"), D, d)
    chunked = build_projector(film("rdkron", cache_mb=0, chunk_size=1), D, d)
    assert cached.film.matrix is not None and chunked.film.matrix is None
    torch.testing.assert_close(materialize(chunked), materialize(cached), rtol=1e-5, atol=1e-6)
    check_projector(film(cache_mb=0, chunk_size=1), 437, 23)


def test_options_are_validated():
    with pytest.raises(ConfigError, match="invalid regular expression"):
        film(patterns=["ln_("])
    with pytest.raises(ConfigError, match="patterns"):
        film(patterns=[])
    with pytest.raises(ConfigError, match="unknown variant"):
        film("kron")


@pytest.mark.parametrize("variant", [None, "rdkron"])
def test_fastfood_matrix_meets_the_contract(variant):
    check_contract(film(variant, matrix="fastfood"))


def test_fastfood_matrix_is_the_fastfood_projector_on_S():
    """matrix='fastfood': P on S is exactly fastfood on the sub-layout of matching tensors (film's streams)."""
    from sublora.projectors.blocks import FastfoodBlock
    from sublora.projectors.fastfood import FastfoodProjector

    D, d = 2000, 40
    layout = ParamLayout.from_named_shapes([("h.0.attn.lora_A", (4, 250)), ("ln_f.weight", (1000,))])
    projector = build_projector(film(matrix="fastfood"), D, d, layout=layout, seed=3)
    assert isinstance(projector.film, FastfoodProjector)
    P = materialize(projector)
    assert not P[:1000].any()
    sub = ParamLayout.from_named_shapes([("ln_f.weight", (1000,))])
    torch.testing.assert_close(P[1000:], materialize(FastfoodBlock(sub, d, 3, projector.film.stream)))
    assert abs(P[1000:].square().sum(dim=0).mean().item() - 1) < 0.1  # unit columns on average
    assert stored_numbers(projector) < 4 * 1024 + 4 * 1000  # O(|S|), not |S| d


def test_dense_only_options_are_refused_with_fastfood():
    with pytest.raises(ConfigError, match="cache_mb only apply to matrix='dense'"):
        film(matrix="fastfood", cache_mb=0)
    with pytest.raises(ConfigError, match="matrix"):
        film(matrix="gaussian")
