"""The manifest's components block: each component the config selects, with the distribution and
version that provide it, taken from the registry (so a third-party plugin's version is recorded)."""

from __future__ import annotations

from importlib import metadata

import pytest

from sublora.core import registry as reg
from sublora.core.manifest import components, new_manifest


@pytest.fixture(autouse=True)
def _fresh_registry():
    reg.refresh()
    yield
    reg.refresh()


def _record(kind: str, spec: str) -> dict:
    entry = reg.registry(kind).entry(spec.split(":")[0])
    return {"spec": spec, "distribution": entry.distribution, "version": entry.version, "entry_point": entry.value}


def test_components_of_a_built_in_config(make_tiny_config):
    config = make_tiny_config(sublora={"projector": "rdkron:qr"},
                              bound={"estimators": ["azuma", "pacbayes:catoni"], "coder": "adaptive"})
    block = components(config)
    assert set(block) == {"source", "tokenizer", "projector", "quantizer", "coder", "bound", "model"}
    assert block["model"] == _record("model", "hf")  # model.impl (issue 14.1): which GPT-2 implementation
    assert block["projector"] == {"spec": "rdkron:qr", "distribution": "sublora-projectors",
                                  "version": metadata.version("sublora-projectors"),
                                  "entry_point": "sublora.projectors.configs.rdkron:RdkronConfig"}
    assert block["coder"]["spec"] == "adaptive" and block["coder"]["distribution"] == "sublora-bounds"
    assert block["source"] == _record("source", "text") and block["tokenizer"] == _record("tokenizer", "bytes")
    assert [b["spec"] for b in block["bound"]] == ["azuma", "pacbayes:catoni"]
    assert {b["distribution"] for b in block["bound"]} == {"sublora-bounds"}
    assert block["quantizer"] == _record("quantizer", config.bound.quantizer)
    assert new_manifest(config)["components"] == block


def test_a_third_party_plugin_is_recorded_with_its_own_distribution_and_version(monkeypatch, make_tiny_config):
    """A projector from another distribution (an installed plugin) is recorded under that distribution."""
    class Dist:
        metadata = {"Name": "acme-projectors"}
        version = "3.1.4"

    dense = reg.registry("projector").entry("dense").value
    ep = metadata.EntryPoint("acme", dense, "sublora.projectors")
    object.__setattr__(ep, "dist", Dist())
    every = metadata.EntryPoints([*(e for g in reg.KINDS.values() for e in metadata.entry_points(group=g)), ep])
    monkeypatch.setattr(metadata, "entry_points", lambda **params: every.select(**params) if params else every)
    reg.refresh()
    block = components(make_tiny_config(sublora={"projector": "acme"}))
    assert block["projector"] == {"spec": "acme", "distribution": "acme-projectors", "version": "3.1.4",
                                  "entry_point": dense}


def test_the_example_plugins_components_are_recorded(make_tiny_config):
    pytest.importorskip("sublora_example")  # installed by scripts/install.sh; not by `nox -s core`
    version = metadata.version("sublora-example-plugins")
    config = make_tiny_config(data={"source": "sums", "tokenizer": "ascii", "source_options": {}},
                              sublora={"projector": "hashing"},
                              bound={"quantizer": "grid", "coder": "fixedwidth", "estimators": ["occam", "azuma"]})
    block = components(config)
    for kind in ("source", "tokenizer", "projector", "quantizer", "coder"):
        assert (block[kind]["distribution"], block[kind]["version"]) == ("sublora-example-plugins", version), kind
    assert [(b["spec"], b["distribution"]) for b in block["bound"]] == [
        ("occam", "sublora-example-plugins"), ("azuma", "sublora-bounds")]
