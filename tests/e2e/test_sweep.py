"""`sublora sweep` + `sublora analyze` end to end on a 2 x 2 x 2 micro grid, and the grid model."""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sublora.core.errors import ConfigError
from sublora.core.sweep import Grid, load_grid, run_state

ROOT = Path(__file__).resolve().parents[2]


def sublora(*args, timeout=900):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    return subprocess.run([sys.executable, "-m", "sublora.cli.app", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def micro_grid(text_corpus, extra_axis=None) -> dict:
    grid = {
        "name": "micro",
        "base": {
            "data": {"source": "text", "source_options": {"path": str(text_corpus)}},
            "model": {"preset": "tiny", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
            "train": {"max_steps": 6, "batch_size": 2, "warmup_steps": 2, "eval_interval": 3, "eval_batches": 1,
                      "log_interval": 2, "checkpoint_interval": 3},
            # a short QAT and levels search: each stage runs, in a third less time per point
            "bound": {"doc_samples": 3, "token_blocks": 8, "qat_steps": 4, "search_blocks": 16},
        },
        "axes": [
            {"name": "d", "field": "sublora.intrinsic_dim", "values": [48, 96]},
            {"name": "alloc", "values": {
                "fixed0.2": {"sublora.projector": "structured:fixed",
                             "sublora.projector_options": {"allocation_ratio": 0.2}},
                "learned": {"sublora.projector": "structured:learned"}}},
            {"name": "seed", "fields": ["train.seed", "sublora.seed"], "values": [0, 1], "replicate": True},
        ],
    }
    if extra_axis:
        grid["axes"].append(extra_axis)
    return grid


@pytest.fixture(scope="module")
def swept(tmp_path_factory, text_corpus):
    root = tmp_path_factory.mktemp("sweep")
    grid = root / "grid.yaml"
    grid.write_text(yaml.safe_dump(micro_grid(text_corpus)))
    result = sublora("sweep", grid, "--out", root / "out", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result


@pytest.mark.slow
def test_every_point_gets_its_own_named_run_with_a_certificate(swept):
    root, result = swept
    out = root / "out"
    names = {f"d{d}_{a}_seed{s}" for d in (48, 96) for a in ("fixed0.2", "learned") for s in (0, 1)}
    assert {p.name for p in out.iterdir() if (p / "manifest.json").is_file()} == names
    state = json.loads((out / "sweep.json").read_text())
    assert {n: p["state"] for n, p in state["points"].items()} == dict.fromkeys(names, "done")
    assert state["threads"] == 1 and state["replicates"] == ["seed"] and state["conditions"] == ["d", "alloc"]
    for name in names:
        assert run_state(out / name) == "verified"
        config = json.loads((out / name / "manifest.json").read_text())["config"]
        assert config["sublora"]["intrinsic_dim"] == int(name.split("_")[0][1:])
        assert config["train"]["seed"] == config["sublora"]["seed"] == int(name[-1])
    assert "8/8 points finished" in result.stdout


@pytest.mark.slow
def test_rerun_skips_finished_points(swept):
    root, _ = swept
    result = sublora("sweep", root / "grid.yaml", "--out", root / "out", "--jobs", "2")
    assert result.returncode == 0
    state = json.loads((root / "out" / "sweep.json").read_text())
    assert {p["state"] for p in state["points"].values()} == {"skipped"}


@pytest.mark.slow
def test_analyze_tables_hold_the_means_over_seeds(swept):
    root, _ = swept
    out = root / "out"
    result = sublora("analyze", out)
    assert result.returncode == 0, result.stderr
    with open(out / "analysis" / "summary_table.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["budget"], r["method"], r["runs"]) for r in rows] == [
        ("48", "fixed0.2", "2"), ("48", "learned", "2"), ("96", "fixed0.2", "2"), ("96", "learned", "2")]
    for r in rows:  # recomputed here from the certificates themselves
        certs = [json.loads((out / f"d{r['budget']}_{r['method']}_seed{s}" / "certificate.json").read_text())
                 for s in (0, 1)]
        bounds = [c["headline"]["value"] if c["headline"]["value"] is not None  # tiny runs: no headline, then
                  else next(b["value"] for b in c["bounds"] if b["target"] == "token_bpd")  # the first token bound
                  for c in certs]
        bits = [c["total_bits"] for c in certs]
        assert float(r["bound_mean"]) == pytest.approx(statistics.fmean(bounds), rel=1e-5)
        assert float(r["bound_std"]) == pytest.approx(statistics.stdev(bounds), rel=1e-4, abs=1e-6)
        assert float(r["total_bits_mean"]) == pytest.approx(statistics.fmean(bits), rel=1e-5)
        assert float(r["size_kb_mean"]) == pytest.approx(statistics.fmean(c["code_bits"] for c in certs) / 8000, rel=1e-5)
    tex = (out / "analysis" / "summary_table.tex").read_text()
    assert tex.count(r"\\") == 5 and "fixed0.2" in tex  # header + 4 rows
    for stem in ("pareto_frontier_d48", "pareto_frontier_d96", "compression_comparison_d48",
                 "allocation_comparison_grid", "learned_gating_heatmap_d48", "learned_gating_heatmap_d96",
                 "learned_gating_trend", "bound_breakdown"):
        for ext in ("png", "pdf"):
            assert (out / "analysis" / f"{stem}.{ext}").stat().st_size > 1000, stem


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_does_not_stop_the_others(tmp_path, text_corpus):
    grid = micro_grid(text_corpus)
    grid["axes"] = [{"name": "docs", "field": "bound.doc_samples", "values": [3, 5000]}]  # 5000 > the documents
    grid["base"]["sublora"] = {"intrinsic_dim": 32, "projector": "rdkron"}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    result = sublora("sweep", path, "--out", tmp_path / "out")
    assert result.returncode == 1
    state = json.loads((tmp_path / "out" / "sweep.json").read_text())["points"]
    assert state["docs3"]["state"] == "done" and state["docs5000"]["state"] == "failed"
    assert "doc_samples=5000 exceeds" in state["docs5000"]["error"]
    assert "failed docs5000" in result.stdout and (tmp_path / "out" / "logs" / "docs5000.log").is_file()


def test_grid_validation_names_the_problem(tmp_path, text_corpus):
    bad = micro_grid(text_corpus, {"name": "lr", "field": "train.lr", "values": [-1.0]})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = sublora("sweep", path, "--out", tmp_path / "out")
    assert result.returncode == 2 and "Grid point" in result.stderr and "train.lr" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing ran
    with pytest.raises(Exception, match="needs 'field' or 'fields'"):
        Grid.model_validate({"axes": [{"name": "x", "values": [1]}]})
    with pytest.raises(Exception, match="same name"):
        Grid.model_validate({"axes": [{"name": "a", "values": {"x": {"t.a": 1}}},
                                      {"name": "b", "values": {"": {"t.b": 1}, "-": {"t.b": 2}}}]})
    (tmp_path / "empty.yaml").write_text("name: x\n")
    with pytest.raises(ConfigError, match="axes"):
        load_grid(tmp_path / "empty.yaml")


def test_the_shipped_grid_is_the_seed_004_study():
    grid = load_grid(ROOT / "configs" / "grids" / "adaptive_allocation.yaml")
    points = grid.points()
    assert len(points) == 30 and grid.replicates == ["seed"]
    assert points[0].name == "d1000_uniform_seed42" and points[-1].name == "d2000_learned_seed999"
    config = grid.config(points[4])  # d1000, fixed0.2, seed 123
    assert config.sublora.projector == "structured:fixed" and config.sublora.projector_options == {"allocation_ratio": 0.2}
    assert config.train.seed == config.sublora.seed == config.model.init_seed == 123
