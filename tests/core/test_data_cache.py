"""The prepared-data cache key: resolved location + content fingerprint; undecodable files skipped or refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sublora.core.config import DataConfig
from sublora.core.data import PreparedData, config_key, ensure_prepared, identify, prepare_data, prepare_or_reuse
from sublora.core.errors import DataError


def write_corpus(folder: Path, word: str, n: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.txt").write_text(f"{word} {i} " * 5, encoding="utf-8")
    return folder


def text_config(path: str, **kw) -> DataConfig:
    return DataConfig(source="text", source_options={"path": path, **kw.pop("options", {})}, val_fraction=0.2, **kw)


def all_bytes(path: Path) -> bytes:
    """The UTF-8 text of every document of a bytes-tokenized directory (eot ids dropped)."""
    tokens = np.concatenate([np.fromfile(path / name, dtype=np.uint16) for name in ("train.bin", "val.bin")])
    return bytes(tokens[tokens < 256].astype(np.uint8))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SUBLORA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_same_relative_path_from_two_folders_is_two_data_sets(tmp_path, cache, monkeypatch):
    write_corpus(tmp_path / "one" / "c", "alpha")
    write_corpus(tmp_path / "two" / "c", "omega")
    config = text_config("./c")
    monkeypatch.chdir(tmp_path / "one")
    first = ensure_prepared(config)
    monkeypatch.chdir(tmp_path / "two")
    second = ensure_prepared(config)
    assert first != second
    assert all_bytes(first) != all_bytes(second)
    assert b"omega" in all_bytes(second) and b"alpha" not in all_bytes(second)
    assert PreparedData.open(second).meta["source_location"] == str((tmp_path / "two" / "c").resolve())


def test_editing_the_corpus_prepares_again_and_says_so(tmp_path, cache):
    corpus = write_corpus(tmp_path / "c", "alpha")
    config = text_config(str(corpus))
    first = prepare_or_reuse(config)
    assert not first.reused and first.notes() == []
    again = prepare_or_reuse(config)
    assert again.reused and again.path == first.path  # unchanged files: the cache is reused

    (corpus / "doc0.txt").write_text("edited " * 5, encoding="utf-8")
    os.utime(corpus / "doc0.txt", ns=(1, 1))  # a distinct mtime even on coarse-grained file systems
    edited = prepare_or_reuse(config)
    assert not edited.reused and edited.path != first.path
    assert edited.changed_since == (first.path,)
    assert "changed since" in edited.changed_note() and str(first.path) in edited.changed_note()
    assert b"edited" in all_bytes(edited.path) and b"edited" not in all_bytes(first.path)
    assert prepare_or_reuse(config).reused

    notes = []
    (corpus / "new.txt").write_text("a new file", encoding="utf-8")
    ensure_prepared(config, notify=notes.append)
    assert len(notes) == 1 and "prepared again" in notes[0]


def test_an_explicit_dir_prepared_from_older_files_is_refused(tmp_path, cache):
    corpus = write_corpus(tmp_path / "c", "alpha")
    config = text_config(str(corpus), dir=tmp_path / "data")
    ensure_prepared(config)
    (corpus / "doc1.txt").write_text("changed", encoding="utf-8")
    os.utime(corpus / "doc1.txt", ns=(1, 1))
    with pytest.raises(DataError, match="same source, but its files have changed") as info:
        ensure_prepared(config)
    assert "--overwrite" in info.value.hint


def test_stdlib_key_is_stable_and_independent_of_the_working_directory(tmp_path, monkeypatch):
    default = DataConfig()
    ident = identify(default)
    assert ident.location and ident.fingerprint["files"] > 100
    monkeypatch.chdir(tmp_path)
    assert config_key(default) == ident.key
    code = "from sublora.core.config import DataConfig\nfrom sublora.core.data import config_key\n" \
           "print(config_key(DataConfig()))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert other.stdout.strip() == ident.key  # another process, another cwd: the same cache directory


def test_binary_and_invalid_utf8_files_are_skipped_and_counted(tmp_path):
    corpus = write_corpus(tmp_path / "c", "alpha")
    (corpus / "blob.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (corpus / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (corpus / "bad.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    meta = prepare_data(text_config(str(corpus)), tmp_path / "data")
    assert meta["skipped_undecodable_files"] == 3
    assert meta["skipped_undecodable_examples"] == ["bad.jsonl", "blob.txt", "latin1.txt"]
    assert meta["n_documents"]["train"] + meta["n_documents"]["val"] == 6
    assert "\ufffd".encode() not in all_bytes(tmp_path / "data")
    assert json.loads((tmp_path / "data" / "meta.json").read_text()) == meta


def test_refuse_option_stops_on_the_first_undecodable_file(tmp_path):
    corpus = write_corpus(tmp_path / "c", "alpha")
    (corpus / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt is not valid UTF-8 \(byte 0xe9 at offset 3\)") as info:
        prepare_data(text_config(str(corpus), options={"undecodable": "refuse"}), tmp_path / "data")
    assert "undecodable=skip" in info.value.hint
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_cli_prepare_reports_skipped_files_and_reuse(tmp_path, cache):
    corpus = write_corpus(tmp_path / "c", "alpha")
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02")
    env = {**os.environ, "SUBLORA_CACHE": str(cache)}
    args = [sys.executable, "-m", "sublora.cli.app", "data", "prepare", "--source", "text",
            f"--data.source_options={{path: {corpus}}}"]
    first = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "prepared" in first.stdout and "Skipped 1 file that is binary or not UTF-8" in first.stdout
    second = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0 and second.stdout.startswith("reused")
    (corpus / "doc2.txt").write_text("changed", encoding="utf-8")
    os.utime(corpus / "doc2.txt", ns=(1, 1))
    third = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert third.returncode == 0 and third.stdout.startswith("prepared") and "changed since" in third.stdout
    refused = subprocess.run([*args, "--data.source_options.undecodable=refuse"], capture_output=True, text=True,
                             env=env, timeout=120)
    assert refused.returncode == 4 and "blob.txt holds a NUL byte" in refused.stderr


@pytest.mark.slow
def test_loading_a_run_rechecks_its_data_after_the_corpus_changed(make_tiny_config, text_corpus, tmp_path, cache):
    import shutil

    from sublora.core.train import load_trained, train

    corpus = tmp_path / "corpus"
    shutil.copytree(text_corpus, corpus)
    config = make_tiny_config(data={"source_options": {"path": str(corpus)}},
                              train={"max_steps": 2, "eval_interval": 2, "checkpoint_interval": 2})
    train(config, tmp_path / "r")
    recorded = Path(json.loads((tmp_path / "r" / "manifest.json").read_text())["data"]["dir"])
    shutil.rmtree(recorded)
    load_trained(tmp_path / "r")  # unchanged files: prepared again, same tokens, same hashes
    shutil.rmtree(recorded)
    first = sorted(corpus.iterdir())[0]
    first.write_text(first.read_text() + "\n# edited\n")
    with pytest.raises(DataError, match="not the data"):
        load_trained(tmp_path / "r")
