"""What `sublora plugins NAME[:VARIANT]` shows, read from the config class: options, types, defaults, constraints."""

from __future__ import annotations

import pytest

from sublora.core import registry as reg
from sublora.core.describe import describe, options_of, type_name
from sublora.core.errors import UnknownComponentError


@pytest.fixture(autouse=True)
def _fresh_registry():
    reg.refresh()
    yield
    reg.refresh()


def test_a_component_with_variants_lists_its_options_with_types_defaults_and_constraints():
    (info,) = describe("structured:learned")
    assert info.entry.kind == "projector" and info.entry.distribution == "sublora-projectors"
    assert info.spec == "structured:learned" and info.variants == ("uniform", "fixed", "learned")
    assert info.default_variant == "uniform" and info.description
    assert info.implementation.startswith("sublora.projectors.")
    options = {o.name: o for o in info.options}
    assert "variant" not in options  # the spec sets it
    ratio = options["allocation_ratio"]
    assert (ratio.type, ratio.default, ratio.required) == ("float", 0.5, False)
    assert ratio.constraints == (">= 0.0", "<= 1.0") and ratio.description
    assert options["base"].default == "rdkron:qr"


def test_the_default_variant_is_shown_when_none_is_asked_for():
    (info,) = describe("pacbayes")
    assert info.variant == "kl" and info.spec == "pacbayes:kl"
    (info,) = describe("rdkron")
    assert info.variant is None and info.spec == "rdkron"


def test_literal_and_optional_types_and_field_validators_are_readable():
    (subsampling,) = describe("subsampling", kind="bound")
    subsample = {o.name: o for o in subsampling.options}["subsample_bound"]
    assert subsample.type == "'hoeffding' | 'bernstein'" and subsample.default == "hoeffding"
    dense = {o.name: o for o in describe("dense")[0].options}
    assert dense["chunk_size"].type == "int | None" and dense["chunk_size"].default is None
    shortest = {o.name: o for o in describe("shortest")[0].options}
    assert shortest["candidates"].default == ["arithmetic", "adaptive"]  # from a default factory
    assert "min length 1" in shortest["candidates"].constraints
    assert any(c.startswith("checked by ") for c in shortest["candidates"].constraints)


def test_a_plugin_is_described_from_its_config_alone(monkeypatch):
    """A third-party config (registered like any plugin): its class settings, required options and checks."""
    import sys
    import types
    from importlib import metadata
    from typing import ClassVar

    from pydantic import Field, model_validator

    from sublora.core.quantizer import QuantizerConfig

    class GridLike(QuantizerConfig):
        description: ClassVar[str] = "An evenly spaced grid."
        fixed_codebook: ClassVar[bool] = True
        span: float = Field(gt=0, description="Half-width of the grid.")

        @model_validator(mode="after")
        def _span_fits_levels(self) -> "GridLike":
            return self

    module = types.ModuleType("gridlike_plugin_xyz")
    module.GridLike = GridLike
    monkeypatch.setitem(sys.modules, "gridlike_plugin_xyz", module)
    real = [ep for group in reg.KINDS.values() for ep in metadata.entry_points(group=group)]
    ep = metadata.EntryPoint("gridlike", "gridlike_plugin_xyz:GridLike", "sublora.quantizers")
    every = metadata.EntryPoints([*real, ep])
    monkeypatch.setattr(metadata, "entry_points", lambda **params: every.select(**params) if params else every)
    reg.refresh()
    (info,) = describe("gridlike")
    assert info.entry.kind == "quantizer" and info.description == "An evenly spaced grid."
    assert info.settings == {"fixed_codebook": True}
    assert info.checks == ("span_fits_levels",)
    options = {o.name: o for o in info.options}
    assert options["span"].required and options["span"].default is None and options["span"].constraints == ("> 0",)
    assert options["levels"].default == 11  # inherited from QuantizerConfig
    (uniform,) = describe("uniform")
    assert uniform.settings == {"fixed_codebook": False}


def test_a_variant_typo_suggests_the_closest_variant():
    with pytest.raises(UnknownComponentError) as info:
        describe("rdkron:qrr")
    assert info.value.message == "Unknown variant 'qrr' of projector 'rdkron'. Did you mean 'rdkron:qr'?"
    assert info.value.hint == "Variants of rdkron: qr."
    with pytest.raises(UnknownComponentError, match="has no variants"):
        describe("dense:x")


def test_an_unknown_name_suggests_the_closest_name_of_any_kind():
    with pytest.raises(UnknownComponentError, match="Unknown component 'freedmann'. Did you mean 'freedman' \\(bound\\)"):
        describe("freedmann")
    with pytest.raises(UnknownComponentError, match="Unknown coder 'rdkron'"):
        describe("rdkron", kind="coder")


def test_type_names():
    from typing import Any, Literal, Optional

    assert type_name(int) == "int"
    assert type_name(Optional[float]) == "float | None"
    assert type_name(dict[str, Any]) == "dict[str, Any]"
    assert type_name(Literal["a", "b"]) == "'a' | 'b'"


def test_every_registered_component_can_be_described():
    """Parametrized over the registry: a new component's options are shown without new code."""
    for kind in reg.KINDS:
        for status in reg.registry(kind).statuses():
            if status.ok:
                options_of(reg.registry(kind).load(status.entry.name))
                assert describe(status.entry.name, kind=kind)[0].entry == status.entry
