"""A sweep never skips or resumes a point as if its settings had not changed; a failed point is retried with
its current settings; a label cannot name a directory outside the sweep."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
import yaml

from sublora.cli.sweeper import Sweep
from sublora.core.errors import RunDirError
from sublora.core.manifest import read_json, write_json
from sublora.core.sweep import Grid
from sublora.core.train import train

TINY_BASE = {
    "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
    "sublora": {"intrinsic_dim": 32, "projector": "rdkron"},
    "train": {"max_steps": 4, "batch_size": 2, "warmup_steps": 1, "eval_interval": 2, "eval_batches": 1,
              "log_interval": 2, "checkpoint_interval": 2, "threads": 1},
    "bound": {"doc_samples": 3, "token_blocks": 8},
}


def grid(text_corpus, base=None, labels=None) -> Grid:
    b = copy.deepcopy(TINY_BASE)
    b["data"] = {"source": "text", "source_options": {"path": str(text_corpus)}}
    for dotted, value in (base or {}).items():
        section, key = dotted.split(".")
        b[section][key] = value
    labels = labels or {"a": {"sublora.seed": 0}, "b": {"sublora.seed": 1}}
    return Grid.model_validate({"name": "t", "base": b, "axes": [{"name": "p", "values": labels}]})


def finish(sweep: Sweep, name: str, status: str = "verified") -> None:
    """Train a point here and mark it certified (as `sublora run` would leave it, minus the bound's work)."""
    config = sweep.configs[name]
    train(config, sweep.out / name)
    manifest = read_json(sweep.out / name / "manifest.json")
    manifest["status"] = status
    write_json(sweep.out / name / "manifest.json", manifest)
    if status in ("bounded", "verified"):
        write_json(sweep.out / name / "certificate.json", {"bound_settings": config.bound.model_dump(mode="json")})


@pytest.fixture
def swept(tmp_path, text_corpus):
    sweep = Sweep(grid(text_corpus), tmp_path / "out")
    for name in sweep.points:
        finish(sweep, name)
    return tmp_path / "out"


def states(sweep):
    return {name: (ps.state, ps.rerun) for name, ps in sweep.points.items()}


def test_unchanged_finished_points_are_skipped(swept, text_corpus):
    sweep = Sweep(grid(text_corpus), swept)
    assert sweep.plan() == [] and states(sweep) == {"a": ("skipped", False), "b": ("skipped", False)}


@pytest.mark.parametrize("change,field", [({"train.lr": 1e-3}, "train.lr 0.005 -> 0.001"),
                                          ({"bound.doc_samples": 4}, "bound.doc_samples 3 -> 4")])
def test_changed_points_are_refused_by_name_or_rerun_when_told(swept, text_corpus, change, field):
    with pytest.raises(RunDirError, match="2 point") as info:
        Sweep(grid(text_corpus, change), swept).plan()
    assert f"a (verified): {field}" in info.value.message and f"b (verified): {field}" in info.value.message
    assert "--rerun-changed" in info.value.hint
    sweep = Sweep(grid(text_corpus, change), swept, rerun_changed=True)
    assert [ps.point.name for ps in sweep.plan()] == ["a", "b"]
    assert states(sweep) == {"a": ("queued", True), "b": ("queued", True)}


def test_a_failed_point_is_redone_with_its_new_settings_without_being_told(swept, text_corpus):
    state = read_json(swept / "sweep.json") if (swept / "sweep.json").is_file() else {"points": {}}
    state["points"] = {"a": {"state": "failed"}, "b": {"state": "done"}}
    write_json(swept / "sweep.json", state)
    sweep = Sweep(grid(text_corpus, labels={"a": {"sublora.seed": 5}, "b": {"sublora.seed": 1}}), swept)
    assert [ps.point.name for ps in sweep.plan()] == ["a"]
    assert states(sweep) == {"a": ("queued", True), "b": ("skipped", False)}


def test_a_trained_point_takes_new_bound_settings_and_an_interrupted_one_resumes(tmp_path, text_corpus):
    sweep = Sweep(grid(text_corpus), tmp_path / "out")
    finish(sweep, "a", status="trained")
    finish(sweep, "b", status="training")
    changed = Sweep(grid(text_corpus, {"bound.doc_samples": 4}), tmp_path / "out")
    assert [ps.point.name for ps in changed.plan()] == ["a", "b"]  # no certificate yet: nothing to redo
    assert states(changed) == {"a": ("queued", False), "b": ("queued", False)}


def test_a_label_cannot_name_a_directory_outside_the_sweep():
    for label in ("..", "."):
        with pytest.raises(Exception, match="cannot name a run directory"):
            Grid.model_validate({"axes": [{"name": "p", "values": {label: {"train.lr": 1e-3}}}]})
    with pytest.raises(Exception, match="starts with '.'"):
        Grid.model_validate({"axes": [{"name": "p", "values": {".hidden": {"train.lr": 1e-3}}}]})
    for name in ("../evil", "a/b", ".hidden"):  # the default output is runs/NAME
        with pytest.raises(Exception, match="name"):
            Grid.model_validate({"name": name, "axes": [{"name": "p", "values": {"a": {"train.lr": 1e-3}}}]})


def sublora(*args, timeout=900):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    return subprocess.run([sys.executable, "-m", "sublora.cli.app", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def smoke_grid(doc_samples: int, lr: float = 5e-3) -> dict:
    """One point on the smoke preset's data (big enough for a headline bound), a few steps."""
    return {"name": "t", "preset": "smoke",
            "base": {"train.max_steps": 6, "train.eval_interval": 3, "train.checkpoint_interval": 3,
                     "train.threads": 1, "train.lr": lr, "bound.qat_steps": 4, "bound.search_blocks": 16},
            "axes": [{"name": "p", "values": {"b": {"bound.doc_samples": doc_samples}}}]}


@pytest.mark.slow
def test_a_fixed_typo_is_used_and_a_changed_grid_is_refused_through_the_cli(tmp_path):
    path, out = tmp_path / "grid.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(smoke_grid(5000)))  # more documents than there are
    result = sublora("sweep", path, "--out", out)
    assert result.returncode == 1, result.stdout + result.stderr
    point = json.loads((out / "sweep.json").read_text())["points"]["b"]
    assert point["state"] == "failed" and "doc_samples=5000" in point["error"]

    path.write_text(yaml.safe_dump(smoke_grid(6)))  # the typo fixed: the failed point is retried with it
    result = sublora("sweep", path, "--out", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((out / "sweep.json").read_text())["points"]["b"]["state"] == "done"
    assert json.loads((out / "b" / "certificate.json").read_text())["bound_settings"]["doc_samples"] == 6

    path.write_text(yaml.safe_dump(smoke_grid(6, lr=1e-3)))
    result = sublora("sweep", path, "--out", out)
    assert result.returncode == 6 and "b (verified): train.lr 0.005 -> 0.001" in result.stderr, result.stderr
    assert "settings changed: train.lr" in sublora("sweep", path, "--out", out, "--dry-run").stdout


def test_a_point_whose_data_cannot_be_prepared_fails_alone(tmp_path, text_corpus):
    """One bad data set fails the points that need it, recorded with the error; the others still go on."""
    labels = {"good": {"data.source_options": {"path": str(text_corpus)}},
              "bad": {"data.source_options": {"path": str(tmp_path / "nosuchdir")}}}
    sweep = Sweep(grid(text_corpus, labels=labels), tmp_path / "out")
    (tmp_path / "out").mkdir()  # sweep.run makes it (under its lock) before preparing data
    todo = sweep.prepare_data(sweep.plan())
    assert [ps.point.name for ps in todo] == ["good"]
    bad = sweep.points["bad"]
    assert bad.state == "failed" and "preparing its data" in bad.error and "nosuchdir" in bad.error
    saved = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert "preparing its data" in json.dumps(saved)
