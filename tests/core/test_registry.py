"""Spec grammar, entry-point registry, unknown names, broken and duplicate plugins."""

from __future__ import annotations

from importlib import metadata

import pytest

from sublora.core import registry as reg
from sublora.core.errors import ConfigError, PluginLoadError, UnknownComponentError
from sublora.core.spec import ComponentSpec, parse_spec


@pytest.fixture(autouse=True)
def _fresh_registry():
    reg.refresh()
    yield
    reg.refresh()


@pytest.mark.parametrize("text, family, variant", [
    ("rdkron", "rdkron", None), ("rdkron:qr", "rdkron", "qr"), ("Structured:Learned", "structured", "learned"),
    (" dense ", "dense", None), ("tiktoken:cl100k_base", "tiktoken", "cl100k_base"),
])
def test_parse_spec(text, family, variant):
    assert parse_spec(text) == ComponentSpec(family, variant)


@pytest.mark.parametrize("bad", ["", ":qr", "rdkron:", "a:b:c", "9lives", "rd kron"])
def test_parse_spec_rejects_bad_grammar(bad):
    with pytest.raises(ConfigError, match="family\\[:variant\\]"):
        parse_spec(bad)


def test_builtins_are_registered_through_entry_points():
    names = {kind: reg.registry(kind).names() for kind in reg.KINDS}
    assert {"dense", "rdkron"} <= set(names["projector"])
    assert {"uniform", "kmeans"} <= set(names["quantizer"])
    assert "arithmetic" in names["coder"]
    assert {"subsampling", "azuma", "freedman"} <= set(names["bound"])
    assert {"pystdlib", "text", "hf"} <= set(names["source"])
    assert {"bytes", "tiktoken"} <= set(names["tokenizer"])
    dists = {e.name: e.distribution for e in reg.registry("projector").entries()}
    assert dists["rdkron"] == "sublora-projectors"


def test_unknown_name_names_closest_match_and_all_available():
    with pytest.raises(UnknownComponentError) as info:
        reg.registry("projector").config("rdkrom")
    err = info.value
    assert "Unknown projector 'rdkrom'" in err.message
    assert "Did you mean 'rdkron'?" in err.message
    for name in reg.registry("projector").names():
        assert name in err.hint
    assert isinstance(err, LookupError)


def test_unknown_variant_and_unknown_option_are_config_errors():
    with pytest.raises(ConfigError, match="variant 'qrr'.*allowed variants: qr"):
        reg.registry("projector").config("rdkron:qrr")
    with pytest.raises(ConfigError, match="Invalid options for quantizer 'uniform': no_such_field: unknown field"):
        reg.registry("quantizer").config("uniform", {"no_such_field": 1})
    with pytest.raises(ConfigError, match="levels"):
        reg.registry("quantizer").config("uniform", {"levels": 1})


def test_config_records_its_spec():
    cfg = reg.registry("projector").config("rdkron:qr")
    assert cfg.spec == "rdkron:qr"
    assert cfg.variant == "qr"


class _FakeDist:
    def __init__(self, name, version="9.9"):
        self.metadata = {"Name": name}
        self.version = version


def _fake_entry_points(extra):
    real = metadata.entry_points

    def entry_points(group=None, **kw):
        eps = list(real(group=group, **kw))
        for grp, name, value, dist in extra:
            if grp == group:
                ep = metadata.EntryPoint(name, value, grp)
                object.__setattr__(ep, "dist", _FakeDist(dist))
                eps.append(ep)
        return eps

    return entry_points


def test_broken_plugin_is_listed_broken_and_breaks_nothing_else(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "broken", "no_such_module_xyz:Config", "sublora-broken-plugin"),
         ("sublora.projectors", "notaconfig", "json:dumps", "some-plugin")]))
    statuses = {s.entry.name: s for s in reg.registry("projector").statuses()}
    assert not statuses["broken"].ok and "no_such_module_xyz" in statuses["broken"].error
    assert not statuses["notaconfig"].ok and "not a sublora ComponentConfig" in statuses["notaconfig"].error
    assert statuses["rdkron"].ok and statuses["dense"].ok
    assert reg.registry("projector").config("rdkron").spec == "rdkron"
    with pytest.raises(PluginLoadError, match="no_such_module_xyz"):
        reg.registry("projector").config("broken")


def test_duplicate_registration_is_an_error(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "rdkron", "evil_plugin:Rdkron", "evil-plugin")]))
    with pytest.raises(PluginLoadError, match="registered twice.*evil-plugin"):
        reg.registry("projector").names()


def test_autoload_switch_ignores_third_party(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "thirdparty", "x:Y", "thirdparty-plugin")]))
    assert "thirdparty" in reg.registry("projector").names()
    monkeypatch.setenv("SUBLORA_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg.refresh()
    names = reg.registry("projector").names()
    assert "thirdparty" not in names and "hashing" not in names and "rdkron" in names


def test_specs_lists_families_and_variants():
    specs = reg.registry("projector").specs()
    assert {"rdkron", "rdkron:qr", "structured:learned", "dense"} <= set(specs)
