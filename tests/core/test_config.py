"""Run config: YAML + dotted overrides, validated with errors that name the field."""

from __future__ import annotations

import pytest

from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError
from sublora.core.overrides import parse_overrides, resolve_config


def test_defaults_are_the_main_job():
    cfg = RunConfig()
    assert (cfg.data.source, cfg.data.tokenizer, cfg.sublora.projector) == ("pystdlib", "bytes", "rdkron:qr")
    assert cfg.bound.levels == 11


def test_overrides_are_parsed_as_yaml_scalars():
    assert parse_overrides(["--sublora.intrinsic_dim=1000", "--train.lr", "1e-3", "--bound.alphas=[0.1, 0.5]",
                            "--model.pretrained=/x/y", "--lora.mlp=true"]) == {
        "sublora.intrinsic_dim": 1000, "train.lr": 1e-3, "bound.alphas": [0.1, 0.5],
        "model.pretrained": "/x/y", "lora.mlp": True}


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("sublora:\n  intrinsic_dim: 500\n  projector: dense\ntrain:\n  lr: 0.01\n")
    cfg = resolve_config(f, {"train.lr": 0.02})
    assert cfg.sublora.intrinsic_dim == 500 and cfg.sublora.projector == "dense" and cfg.train.lr == 0.02


@pytest.mark.parametrize("overrides, field", [
    ({"train.lr": -1}, "train.lr"),
    ({"train.nosuch": 1}, "train.nosuch: unknown field"),
    ({"nosection.x": 1}, "nosection: unknown field"),
    ({"sublora.intrinsic_dim": "many"}, "sublora.intrinsic_dim"),
    ({"bound.alphas": [0.0, 0.5]}, "bound.alphas"),
    ({"bound.delta": 1.5}, "bound.delta"),
    ({"model.n_embd": 100, "model.n_head": 3}, "model.n_embd"),
])
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        resolve_config(None, overrides)
    assert field in str(info.value)


def test_an_unknown_field_names_the_fields_there_and_the_closest():
    with pytest.raises(ConfigError) as info:
        resolve_config(None, {"train.max_step": 3})
    assert "did you mean 'max_steps'?" in str(info.value) and "known: max_steps, batch_size" in str(info.value)
    with pytest.raises(ConfigError) as info:
        resolve_config(None, {"nosection.x": 1})
    assert "known: data, model, lora, sublora, train, bound" in str(info.value)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="dotted"):
        parse_overrides(["--lr=1"])
    with pytest.raises(ConfigError, match="no value"):
        parse_overrides(["--train.lr"])


def test_missing_or_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        resolve_config(bad)


@pytest.mark.parametrize("target, message", [("sequence_bpd", "cannot be the headline"),
                                             ("token", "unknown target 'token'")])
def test_headline_target_is_one_that_can_compete(target, message):
    from sublora.core.config import RunConfig
    from sublora.core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"bound": {"headline_target": target}})
    assert RunConfig.from_dict({"bound": {"headline_target": "document_top10"}}).bound.headline_target == "document_top10"
