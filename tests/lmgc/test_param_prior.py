"""The `lmgc` data source (issue 11 item 6a): serialized gradients/weights of other runs as a corpus for
`sublora train`, so a neural parameter prior trains with the unchanged commands and says what it saw."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from sublora.core.errors import ConfigError, DataError
from sublora.core.registry import registry
from sublora.core.testing import check_source_contract
from sublora.lmgc.collect import collect, make_config
from sublora.lmgc.gradients import raw_bytes
from sublora.lmgc.serialize import CHUNK, deserialize, serialize_stream, unchunk

# skipped without scikit-learn, found without importing it (its import costs each test worker ~1 s)
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                 reason="needs scikit-learn (sublora-lmgc[digits])")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny MLP runs (seeds 1 and 2): 2 gradient checkpoints and final weights each, 2,440 bytes apiece."""
    root = tmp_path_factory.mktemp("param-prior")
    dirs = []
    for seed in (1, 2):
        out = root / f"mlp-seed{seed}"
        collect(make_config(network="mlp", width=8, depth=1, steps=4, grad_interval=2, batch_size=16, seed=seed), out)
        dirs.append(out)
    return dirs


def _source(options, variant="grads"):
    return registry("source").config(f"lmgc:{variant}", options).build()


def test_registered_and_passes_the_source_contract(runs):
    for variant in ("grads", "weights", "all"):
        check_source_contract(f"lmgc:{variant}", {"paths": [str(p) for p in runs]})
    check_source_contract("lmgc", {"paths": [str(runs[0])], "document": "chunk", "max_chunks": 2})


def test_chunk_documents_are_the_serialized_stream_and_read_back_exactly(runs):
    options = {"paths": [str(p) for p in runs], "document": "chunk"}
    docs = list(_source(options).documents())
    per_checkpoint = -(-len(raw_bytes(runs[0], 2)) // CHUNK)
    assert len(docs) == 2 * 2 * per_checkpoint == _source(options).count()
    assert [d for d, _ in docs[:per_checkpoint + 1]] == [f"0:mlp-seed1/step2/{c:06d}" for c in range(per_checkpoint)] \
        + ["0:mlp-seed1/step4/000000"]
    first = [text for _, text in docs[:per_checkpoint]]
    assert first == serialize_stream(raw_bytes(runs[0], 2), "hex-space", 4)
    rebuilt = unchunk([deserialize(t, "hex-space", 4) for t in first], len(raw_bytes(runs[0], 2)))
    assert rebuilt == raw_bytes(runs[0], 2)


def test_checkpoint_documents_are_exactly_what_compress_codes(runs):
    """document: checkpoint (the default) joins the chunks' texts with nothing between them: the codec's stream."""
    docs = dict(_source({"paths": [str(runs[1])], "serialization": "hex-none", "bytes_per_group": 2},
                        "all").documents())
    assert list(docs) == ["0:mlp-seed2/step2", "0:mlp-seed2/step4", "0:mlp-seed2/weights"]
    assert docs["0:mlp-seed2/weights"] == "".join(serialize_stream(raw_bytes(runs[1], "weights"), "hex-none", 2))


def test_steps_select_and_max_chunks_choose_what_is_read(runs):
    src = _source({"paths": [str(runs[0])], "steps": [4], "select": ["layers.0.*"], "max_chunks": 3, "document": "chunk"})
    docs = list(src.documents())
    raw = raw_bytes(runs[0], 4, select=["layers.0.*"])
    n = -(-len(raw) // CHUNK)
    assert n > 3 and len(docs) == 3 == src.count()
    expected = serialize_stream(raw, "hex-space", 4)
    assert [t for _, t in docs] == [expected[0], expected[round((n - 1) / 2)], expected[-1]]


def test_describe_records_every_run_its_checkpoints_and_file_hashes(runs):
    import hashlib

    described = _source({"paths": [str(p) for p in runs]}, "all").describe()
    assert described["kind"] == "lmgc-serialized-numbers" and described["zero_shot"] is False
    assert [r["source"]["seed"] for r in described["runs"]] == [1, 2]
    run = described["runs"][0]
    assert run["source"]["network"] == "mlp" and run["source"]["dataset"] == "sklearn-digits-8x8"
    assert run["checkpoints"] == [2, 4, "weights"]
    assert run["files_sha256"]["weights_final.safetensors"] == \
        hashlib.sha256((runs[0] / "weights_final.safetensors").read_bytes()).hexdigest()
    json.dumps(described)


def test_globs_expand_sorted_and_each_directory_once(runs):
    src = _source({"paths": [str(runs[0].parent / "mlp-seed*"), str(runs[1])]})
    assert [g.root.name for g in src.directories()] == ["mlp-seed1", "mlp-seed2"]


def test_bad_options_are_clear_errors(runs, tmp_path):
    with pytest.raises(DataError, match="not a gradient directory"):
        list(_source({"paths": [str(tmp_path / "nothing")]}).documents())
    with pytest.raises(DataError, match="no gradient checkpoint at step"):
        list(_source({"paths": [str(runs[0])], "steps": [3]}).documents())
    with pytest.raises(ConfigError, match="did you mean 'hex-space'"):
        registry("source").config("lmgc", {"paths": [str(runs[0])], "serialization": "hex-spac"})
    with pytest.raises(ConfigError, match="paths"):
        registry("source").config("lmgc", {})


@pytest.mark.slow
def test_a_prior_trained_on_the_source_says_which_runs_it_saw(runs, make_tiny_config, tmp_path):
    """`sublora data prepare` + `sublora train` unchanged: meta.json, the prior and its provenance name the runs."""
    from typer.testing import CliRunner

    from sublora.cli.app import app
    from sublora.lmgc.prior import load_prior
    from sublora.lmgc.provenance import prior_saw

    paths = f"[{runs[0]},{runs[1]}]"
    result = CliRunner().invoke(app, ["data", "prepare", "--source", "lmgc:grads", "--out", str(tmp_path / "data"),
                                      f"--data.source_options.paths={paths}"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["source"]["spec"] == "lmgc:grads" and len(meta["source"]["describe"]["runs"]) == 2

    config = make_tiny_config(data={"source": "lmgc:grads", "source_options": {"paths": [str(p) for p in runs]},
                                    "dir": str(tmp_path / "data")},
                              train={"max_steps": 2, "eval_interval": 2, "checkpoint_interval": 2})
    (tmp_path / "config.yaml").write_text(json.dumps(config.to_dict()))
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "prior")])
    assert result.exit_code == 0, result.output
    prior = load_prior(tmp_path / "prior")
    assert prior.saw["zero_shot"] is False and "NOT zero-shot" in prior.describe()
    assert "mlp seed 1 on sklearn-digits-8x8 (2 checkpoints)" in prior.describe()
    assert "mlp seed 2" in prior.describe() and "hex-space/4" in prior.describe()
    saw = prior_saw(tmp_path / "prior")
    assert [r["dataset"] for r in saw["numbers_of"]] == ["sklearn-digits-8x8"] * 2
    assert saw["data"]["source"] == "lmgc:grads"
    assert np.isfinite(prior.logits(np.array([prior.bos_id] + [ord(c) for c in "cdcccc3d"]))).all()
