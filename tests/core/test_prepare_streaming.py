"""Preparing in bounded memory: batches, a worker pool with order-independent output, a streamed HF source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sublora.core.config import DataConfig
from sublora.core.data import PreparedData, prepare_data, streaming
from sublora.core.errors import DataError

FILES = ("train.bin", "val.bin", "eot_indices.npy", "val_eot_indices.npy", "doc_lengths.npy")


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of ~40 characters, so a tiny corpus spans many batches (and many in flight)."""
    monkeypatch.setattr(streaming, "BATCH_CHARS", 40)


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)), encoding="utf-8")
    return path


def texts(n: int = 30) -> list[str]:
    return ["" if i % 7 == 3 else f"document {i} " + "xyz " * (i % 5) for i in range(n)]


def files_of(path: Path) -> dict[str, bytes]:
    return {name: (path / name).read_bytes() for name in FILES}


def text_config(path: Path, **kw) -> DataConfig:
    return DataConfig(source="text", source_options={"path": str(path)}, val_fraction=0.2, **kw)


@pytest.mark.parametrize("max_documents", [None, 9])
def test_same_files_for_any_number_of_workers(tmp_path, small_batches, max_documents):
    corpus = write_jsonl(tmp_path / "c.jsonl", texts())
    config = text_config(corpus, max_documents=max_documents)
    metas = {w: prepare_data(config, tmp_path / f"w{w}", workers=w) for w in (1, 2, 3)}
    assert files_of(tmp_path / "w2") == files_of(tmp_path / "w1") == files_of(tmp_path / "w3")
    assert metas[1]["sha256"] == metas[2]["sha256"] == metas[3]["sha256"]
    n_docs = sum(metas[1]["n_documents"].values())
    assert n_docs == (max_documents or 26) and metas[1]["skipped_empty_documents"] == (1 if max_documents else 4)
    PreparedData.open(tmp_path / "w2").verify_hashes()


def test_max_documents_reads_no_document_past_the_last_one_kept(tmp_path, small_batches):
    # Line 6 is not JSON: a reader that ran ahead of the 4 documents asked for would stop on it.
    path = write_jsonl(tmp_path / "c.jsonl", ["a", "", "b", "c", "d"])
    path.write_text(path.read_text() + "{not json\n", encoding="utf-8")
    meta = prepare_data(text_config(path, max_documents=4), tmp_path / "out", workers=2)
    assert sum(meta["n_documents"].values()) == 4 and meta["skipped_empty_documents"] == 1
    with pytest.raises(DataError, match="not valid JSON"):
        prepare_data(text_config(path, max_documents=5), tmp_path / "out2")


def test_documents_in_flight_are_bounded(tmp_path, monkeypatch, small_batches):
    monkeypatch.setattr(streaming, "_PROGRESS_SECONDS", 0.0)
    read, gaps = [0], []

    def documents():
        for i in range(400):
            read[0] += 1
            yield f"d{i}", f"document number {i:04d} "  # 22 characters: 2 per batch

    with open(tmp_path / "all.bin", "wb") as fh:
        tally = streaming.tokenize_to_file(documents(), *_bytes_tokenizer(), fh, workers=1,
                                           progress=lambda written: gaps.append(read[0] - written))
    assert tally.kept == 400 and len(gaps) > 100
    assert max(gaps) <= (streaming.IN_FLIGHT_PER_WORKER + 1) * 2  # never the whole corpus


def _bytes_tokenizer():
    import numpy as np
    from sublora.core.registry import registry

    config = registry("tokenizer").config("bytes")
    return config.build(), config, np.dtype(np.uint16)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5])
def test_workers_below_one_is_refused(tmp_path, workers):
    corpus = write_jsonl(tmp_path / "c.jsonl", texts(4))
    with pytest.raises(DataError, match=r"workers must be a whole number >= 1 \(got"):
        prepare_data(text_config(corpus), tmp_path / "out", workers=workers)
    assert [p.name for p in tmp_path.iterdir()] == ["c.jsonl"]


def test_hf_source_is_streamed_and_prepares_like_the_text_source(tmp_path, monkeypatch, small_batches):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = []
    load = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: calls.append(kw) or load(*a, **kw))
    path = write_jsonl(tmp_path / "c.jsonl", texts())
    options = {"name": "json", "data_files": str(path), "cache_dir": str(tmp_path / "hf-cache")}
    hf = DataConfig(source="hf", source_options=options, val_fraction=0.2, max_documents=12)
    meta = prepare_data(hf, tmp_path / "hf", workers=2)
    assert calls[-1]["streaming"] is True
    assert not (tmp_path / "hf-cache").exists() or not any((tmp_path / "hf-cache").rglob("*.arrow"))
    prepare_data(text_config(path, max_documents=12), tmp_path / "text")
    assert files_of(tmp_path / "hf") == files_of(tmp_path / "text")
    assert meta["source"]["options"]["streaming"] is True

    arrow = DataConfig(source="hf", source_options={**options, "streaming": False}, val_fraction=0.2, max_documents=12)
    prepare_data(arrow, tmp_path / "arrow")
    assert calls[-1]["streaming"] is False and files_of(tmp_path / "arrow") == files_of(tmp_path / "text")


def test_hf_source_bad_columns_name_the_columns(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    path = write_jsonl(tmp_path / "c.jsonl", texts(4))
    options = {"name": "json", "data_files": str(path), "cache_dir": str(tmp_path / "hf-cache")}
    with pytest.raises(DataError, match=r"no column 'body' \(columns: text, n\)"):
        prepare_data(DataConfig(source="hf", source_options={**options, "text_field": "body"}), tmp_path / "o")
    with pytest.raises(DataError, match=r"Column 'n' of dataset 'json' holds int values, not text"):
        prepare_data(DataConfig(source="hf", source_options={**options, "text_field": "n"}), tmp_path / "o")
    missing = {**options, "data_files": str(tmp_path / "nothing.jsonl")}
    with pytest.raises(DataError, match="Could not load dataset 'json'"):
        prepare_data(DataConfig(source="hf", source_options=missing), tmp_path / "o")


@pytest.mark.slow
def test_cli_workers_option(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", texts())
    env = {**os.environ, "SUBLORA_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "sublora.cli.app", "data", "prepare", "--source", "text",
            f"--data.source_options={{path: {corpus}}}"]
    two = subprocess.run([*base, "--out", str(tmp_path / "two"), "--workers", "2"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert two.returncode == 0, two.stderr
    one = subprocess.run([*base, "--out", str(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=120)
    assert one.returncode == 0, one.stderr
    assert files_of(tmp_path / "two") == files_of(tmp_path / "one")
    bad = subprocess.run([*base, "--workers", "0"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--workers" in bad.stderr and "greater than or equal to 1" in bad.stderr
    assert "Traceback" not in bad.stderr
