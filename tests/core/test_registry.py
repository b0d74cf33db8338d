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
    with pytest.raises(ConfigError, match="unknown variant 'learnd'; did you mean 'learned'\\?"):
        reg.registry("projector").config("structured:learnd")
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
    """metadata.entry_points with extra (group, name, value, distribution) entries, as installed plugins add."""
    real = metadata.entry_points
    eps = [ep for group in reg.KINDS.values() for ep in real(group=group)]
    for grp, name, value, dist in extra:
        ep = metadata.EntryPoint(name, value, grp)
        object.__setattr__(ep, "dist", _FakeDist(dist))
        eps.append(ep)

    def entry_points(**params):
        every = metadata.EntryPoints(eps)
        return every.select(**params) if params else every

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


def test_duplicate_registration_is_an_error_only_for_that_name(monkeypatch):
    """Two distributions registering one name: selecting it fails naming both; the rest of the kind works."""
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "rdkron", "evil_plugin:Rdkron", "evil-plugin")]))
    with pytest.raises(PluginLoadError, match="registered twice.*evil-plugin.*sublora-projectors") as info:
        reg.registry("projector").config("rdkron")
    assert "evil-plugin" in info.value.hint and "sublora-projectors" in info.value.hint
    assert "rdkron" in reg.registry("projector").names()
    assert reg.registry("projector").config("dense").spec == "dense"
    rows = [s for s in reg.registry("projector").statuses() if s.entry.name == "rdkron"]
    assert sorted(s.entry.distribution for s in rows) == ["evil-plugin", "sublora-projectors"]
    assert all(not s.ok and s.state == "conflict" and "registered twice" in s.error for s in rows)
    assert {s.summary for s in rows} == {"also registered by evil-plugin", "also registered by sublora-projectors"}
    assert "rdkron" not in reg.registry("projector").specs()


def test_same_entry_seen_twice_is_one_entry(monkeypatch):
    """One distribution on two sys.path entries (same name, same target) is not a conflict."""
    value = next(e.value for e in reg.registry("projector").entries() if e.name == "dense")
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "dense", value, "sublora-projectors")]))
    reg.refresh()
    assert reg.registry("projector").config("dense").spec == "dense"


def test_broken_plugin_summary_names_the_root_cause(monkeypatch):
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.coders", "broken", "no_such_module_xyz.sub:Config", "sublora-broken-plugin")]))
    (status,) = [s for s in reg.registry("coder").statuses() if s.entry.name == "broken"]
    assert status.state == "broken"
    assert status.summary == "ModuleNotFoundError: No module named 'no_such_module_xyz'"
    assert status.error.startswith("coder 'broken' from sublora-broken-plugin 9.9: Could not load")
    assert "sublora-broken-plugin" in status.hint


def test_a_config_that_raises_on_inspection_is_a_broken_row(monkeypatch):
    """Whatever a plugin's config does wrong, the listing gets a row, not an exception."""
    import sys
    import types

    from sublora.core.projector_config import ProjectorConfig

    class Weird(ProjectorConfig):
        variants = 5  # not a tuple: tuple(5) raises TypeError

    module = types.ModuleType("weird_plugin_xyz")
    module.Weird = Weird
    monkeypatch.setitem(sys.modules, "weird_plugin_xyz", module)
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(
        [("sublora.projectors", "weird", "weird_plugin_xyz:Weird", "weird-plugin")]))
    (status,) = [s for s in reg.registry("projector").statuses() if s.entry.name == "weird"]
    assert status.state == "broken" and "TypeError" in status.error and "weird-plugin" in status.error


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
