"""`sublora lmgc bench` and the coding commands: rates next to the baselines on the same bytes, results
in files; compress/decompress from the command line rebuild the bytes and name bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lmgc_priors import text_prior
from sublora.lmgc import bench


def _app():
    from sublora.cli.app import app

    return app


def _floats(n: int, seed: int = 0) -> bytes:
    return (np.random.default_rng(seed).standard_normal(n) * 1e-3).astype("<f4").tobytes()


def test_sample_chunks_keeps_whole_spread_chunks():
    raw = bytes(range(256)) * 40  # 10,240 bytes = 20 chunks
    same, info = bench.sample_chunks(raw, None)
    assert same == raw and not info["sampled"]
    part, info = bench.sample_chunks(raw, 2048)
    assert len(part) == 2048 and info["chunks"] == [0, 6, 13, 19]
    assert part[:512] == raw[:512] and part[-512:] == raw[-512:]


def test_rows_put_lmgc_next_to_the_baselines_on_the_same_bytes(tmp_path):
    from sublora.lmgc.prior import load_prior

    raw = _floats(128)
    prior = load_prior(text_prior())
    rows = bench.lmgc_rows(raw, prior, ["hex-space", "iso"], [4, None], window=32)
    rows += bench.baseline_rows(raw, ["gzip", "lzma"])
    lm = [r for r in rows if r["method"] == "lm-gc"]
    assert [(r["serialization"], r["bytes_per_group"]) for r in lm] == [
        ("hex-space", 4), ("hex-space", None), ("iso", 4), ("iso", None)]
    assert all(r["rate"] == 100 * r["bytes"] / len(raw) and abs(r["rate"] - r["ideal_rate"]) < 2 for r in lm)
    assert lm[0]["tokens_per_float"] == 9 - 1 / 128  # 8 hex digits + a space, none after the last
    assert {(r["method"], r["mode"]) for r in rows if r["method"] != "lm-gc"} == {
        ("gzip", "whole"), ("gzip", "chunked"), ("lzma", "whole"), ("lzma", "chunked")}
    assert bench.best_baseline(rows)["method"] in ("gzip", "lzma")
    written = bench.write_results(tmp_path / "b", rows, {"title": "test"}, plot=False)
    table = list(csv.DictReader((tmp_path / "b" / "bench.csv").open()))
    assert len(table) == len(rows) and table[0]["method"] == "lm-gc"
    assert json.loads((tmp_path / "b" / "bench.json").read_text())["rows"][0]["serialization"] == "hex-space"
    assert [p.name for p in written] == ["bench.csv", "bench.json"]


def test_list_options_accept_commas_repeats_and_all():
    assert bench.parse_serializations(None) == ["hex-space"]
    assert bench.parse_serializations(["hex-none,iso", "hex-0x"]) == ["hex-none", "iso", "hex-0x"]
    assert len(bench.parse_serializations(["all"])) == 9
    assert bench.parse_groups(["1,none", "8"]) == [1, None, 8] and bench.parse_groups(None) == [4]
    assert bench.parse_groups(["all"]) == [1, 2, 3, 4, 8, None]


@pytest.mark.slow
def test_commands_round_trip_bench_and_name_bad_input(tmp_path):
    pytest.importorskip("matplotlib")
    run = str(text_prior())
    raw = _floats(20)
    (tmp_path / "g.f32").write_bytes(raw)
    runner = CliRunner()
    result = runner.invoke(_app(), ["lmgc", "compress", str(tmp_path / "g.f32"), "--prior", run, "--out",
                                    str(tmp_path / "g.lmgc"), "--serialization", "hex-space", "--bytes-per-group", "4"])
    assert result.exit_code == 0, result.output
    assert "rate" in result.output and "window" in result.output
    result = runner.invoke(_app(), ["lmgc", "decompress", str(tmp_path / "g.lmgc"), "--out", str(tmp_path / "g.out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.out").read_bytes() == raw and "matches" in result.output

    (tmp_path / "odd.bin").write_bytes(b"abc")
    bad = runner.invoke(_app(), ["lmgc", "compress", str(tmp_path / "odd.bin"), "--prior", run, "--out",
                                 str(tmp_path / "x.lmgc")])
    assert bad.exit_code != 0 and "not a whole number of float32" in str(bad.exception)
    assert not (tmp_path / "x.lmgc").exists()

    result = runner.invoke(_app(), ["lmgc", "bench", str(tmp_path / "g.f32"), "--prior", run, "--out",
                                    str(tmp_path / "bench"), "--serializations", "hex-space,iso",
                                    "--bytes-per-group", "4"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "bench").iterdir()} == {"bench.csv", "bench.json", "bench.png"}
    rows = json.loads((tmp_path / "bench" / "bench.json").read_text())["rows"]
    assert [r["serialization"] for r in rows if r["method"] == "lm-gc"] == ["hex-space", "iso"]
    assert any(r["method"] == "gzip" and r["mode"] == "chunked" for r in rows)
