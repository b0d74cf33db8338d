"""Every component spec and its options are checked when a config loads, before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sublora.core.config import RunConfig
from sublora.core.errors import ConfigError
from sublora.core.overrides import apply_overrides
from sublora.core.registry import registry
from sublora.core.sweep import Grid


def load(**dotted) -> RunConfig:
    return RunConfig.from_dict(apply_overrides({}, dotted))


@pytest.mark.parametrize("dotted, message", [
    ({"data.source": "txt"}, "data.source: Unknown source 'txt'. Did you mean 'text'?"),
    ({"data.tokenizer": "byts"}, "data.tokenizer: Unknown tokenizer 'byts'. Did you mean 'bytes'?"),
    ({"data.tokenizer": "tiktoken:gpt3"}, "data.tokenizer: Unknown variant 'gpt3' of tokenizer 'tiktoken'."),
    ({"sublora.projector": "rdkrom"}, "sublora.projector: Unknown projector 'rdkrom'. Did you mean 'rdkron'?"),
    ({"bound.quantizer": "kmean"}, "bound.quantizer: Unknown quantizer 'kmean'. Did you mean 'kmeans'?"),
    ({"bound.coder": "shortst"}, "bound.coder: Unknown coder 'shortst'. Did you mean 'shortest'?"),
    ({"bound.estimators": ["subsampling", "azuma2"]},
     "bound.estimators[1]: Unknown bound 'azuma2'. Did you mean 'azuma'?"),
    ({"bound.estimators": ["pacbayes:mcalester"]},
     "bound.estimators[0]: Unknown variant 'mcalester' of bound 'pacbayes'. Did you mean 'pacbayes:mcallester'?"),
    ({"bound.estimators": ["az uma"]}, "bound.estimators[0]: Invalid bound spec 'az uma'."),
    ({"data.source": "text"}, "data.source_options: Invalid options for source 'text': path: Field required."),
    ({"data.source_options": {"undecodable": "ignore"}}, "data.source_options: Invalid options for source 'pystdlib'"),
    ({"sublora.projector_options": {"bogus": 1}}, "sublora.projector_options: Invalid options for projector 'rdkron'"),
    ({"bound.quantizer_options": {"max_iter": 0}}, "bound.quantizer_options: Invalid options for quantizer 'kmeans'"),
    ({"bound.coder_options": {"candidates": ["arithmetc"]}}, "bound.coder_options: Invalid options for coder"),
    ({"bound.estimator_options": {"freedman": {"grid_sise": 3}}},
     "bound.estimator_options.freedman: Invalid options for bound 'freedman': grid_sise: unknown field."),
    ({"bound.estimator_options": {"azuma2": {}}},
     "bound.estimator_options.azuma2: no estimator 'azuma2' among bound.estimators"),
    ({"bound.estimators": ["azuma"], "bound.estimator_options": {"freedman": {"grid_size": 3}}},
     "bound.estimator_options.freedman: no estimator 'freedman'"),
])
def test_a_typo_in_any_spec_or_option_is_refused_when_the_config_loads(dotted, message):
    with pytest.raises(ConfigError) as info:
        load(**dotted)
    assert str(info.value.message).startswith(message), info.value.message
    assert info.value.hint


def test_the_error_for_an_unknown_estimator_lists_the_available_ones():
    with pytest.raises(ConfigError) as info:
        load(**{"bound.estimators": ["azuma2"]})
    assert info.value.hint.startswith("Available bounds:") and "freedman" in info.value.hint


def test_valid_configs_load():
    load()
    load(**{"bound.estimators": ["azuma", "pacbayes:catoni"], "bound.estimator_options": {"azuma": {}},
            "bound.quantizer": "uniform", "bound.coder": "adaptive", "bound.coder_options": {"prior": 0.3},
            "data.tokenizer": "tiktoken:gpt2", "sublora.projector": "dense"})


@pytest.mark.parametrize("kind, name", [(kind, e.name) for kind in ("source", "tokenizer", "projector", "quantizer",
                                                                     "coder", "bound")
                                        for e in registry(kind).entries()])
def test_every_registered_component_has_its_options_checked(kind, name):
    """An unknown option of any registered component (built-in or plugin) fails at load time."""
    dotted = {
        "source": {"data.source": name, "data.source_options": {"no_such_option": 1}},
        "tokenizer": {"data.tokenizer": name, "data.tokenizer_options": {"no_such_option": 1}},
        "projector": {"sublora.projector": name, "sublora.projector_options": {"no_such_option": 1}},
        "quantizer": {"bound.quantizer": name, "bound.quantizer_options": {"no_such_option": 1}},
        "coder": {"bound.coder": name, "bound.coder_options": {"no_such_option": 1}},
        "bound": {"bound.estimators": [name], "bound.estimator_options": {name: {"no_such_option": 1}}},
    }[kind]
    with pytest.raises(ConfigError, match="no_such_option: unknown field"):
        load(**dotted)


def test_a_bad_levels_in_quantizer_options_names_that_field():
    with pytest.raises(ConfigError, match=r"^bound.quantizer_options: .*levels"):
        load(**{"bound.quantizer_options": {"levels": 1}})


def test_a_bad_grid_point_fails_before_any_point_runs():
    grid = Grid.model_validate({"base": {}, "axes": [
        {"name": "est", "values": {"ok": {"bound.estimators": ["azuma"]}, "typo": {"bound.estimators": ["azuma2"]}}}]})
    good, bad = grid.points()
    grid.config(good)
    with pytest.raises(ConfigError, match=r"Grid point 'typo': bound.estimators\[0\]: Unknown bound 'azuma2'"):
        grid.config(bad)


def test_validation_stays_cheap(fresh_python):
    """Loading a config checks every component through light config classes: no torch, no tokenizer files."""
    code = ("import sys, json\nfrom sublora.core.config import RunConfig\n"
            "RunConfig.from_dict({'data': {'tokenizer': 'tiktoken:gpt2'}})\n"
            "print(json.dumps(sorted(m for m in ('torch', 'tiktoken', 'datasets', 'transformers') if m in sys.modules)))")
    assert fresh_python(code) == []


def test_cli_refuses_an_estimator_typo_before_creating_the_run_dir(tmp_path):
    out = tmp_path / "X"
    result = subprocess.run([sys.executable, "-m", "sublora.cli.app", "train", "--bound.estimators=[azuma2]",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "bound.estimators[0]: Unknown bound 'azuma2'. Did you mean 'azuma'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_cli_config_that_is_a_directory_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sublora.cli.app", "train", "--config", str(tmp_path),
                             "--out", str(tmp_path / "X")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is a directory; a YAML file is expected" in result.stderr
    assert not (tmp_path / "X").exists()
