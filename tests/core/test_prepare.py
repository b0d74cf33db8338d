"""prepare_data / PreparedData / ensure_prepared on a tiny text folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sublora.core.config import DataConfig
from sublora.core.data import PreparedData, config_key, default_data_dir, ensure_prepared, prepare_data
from sublora.core.errors import DataError
from sublora.core.registry import registry

N_DOCS = 20


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(N_DOCS):
        (folder / f"doc{i:02d}.txt").write_text(f"document {i} " + "abc " * (i + 3), encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    return folder


def data_config(corpus: Path, **kw) -> DataConfig:
    return DataConfig(source="text", source_options={"path": str(corpus)}, tokenizer="bytes",
                      val_fraction=0.2, **kw)


def texts_of(data: PreparedData, split: str) -> list[str]:
    tok = registry("tokenizer").config("bytes").build()
    starts, ends = data.doc_bounds(split)
    return [tok.decode(data.tokens(split)[s:e - 1]) for s, e in zip(starts, ends)]


def test_prepare_writes_consistent_files(corpus, tmp_path):
    calls = []
    out = tmp_path / "data"
    meta = prepare_data(data_config(corpus), out, progress=lambda done, total: calls.append((done, total)))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train.bin", "val.bin", "eot_indices.npy", "doc_lengths.npy", "val_eot_indices.npy", "meta.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp dir renamed away
    assert calls[-1] == (N_DOCS + 1, N_DOCS + 1)
    assert json.loads((out / "meta.json").read_text()) == meta
    assert meta["n_documents"] == {"train": 16, "val": 4} and meta["skipped_empty_documents"] == 1
    assert meta["dtype"] == "uint16" and meta["eot_id"] == 256 and meta["vocab_size"] == 257
    assert meta["source"]["spec"] == "text" and meta["tokenizer"]["spec"] == "bytes"

    data = PreparedData.open(out)
    data.verify_hashes()
    for split in ("train", "val"):
        tokens = np.memmap(out / f"{split}.bin", dtype=np.uint16, mode="r")
        eot = data.eot_indices(split)
        assert len(tokens) == meta["n_tokens"][split] == data.n_tokens(split)
        assert data.n_documents(split) == meta["n_documents"][split]
        np.testing.assert_array_equal(np.flatnonzero(tokens == 256), eot)
    starts, ends = data.train_doc_bounds()
    np.testing.assert_array_equal(ends - starts, np.load(out / "doc_lengths.npy"))
    assert starts[0] == 0 and ends[-1] == data.n_tokens("train")

    all_texts = sorted(texts_of(data, "train") + texts_of(data, "val"))
    assert all_texts == sorted(p.read_text() for p in corpus.glob("doc*.txt"))
    assert texts_of(data, "train") == sorted(texts_of(data, "train"), key=lambda t: int(t.split()[1]))


def test_split_is_by_document_and_seeded(corpus, tmp_path):
    def val_texts(seed, name):
        prepare_data(data_config(corpus, split_seed=seed), tmp_path / name)
        return texts_of(PreparedData.open(tmp_path / name), "val")

    first = val_texts(1, "a")
    assert val_texts(1, "b") == first
    assert (tmp_path / "a/train.bin").read_bytes() == (tmp_path / "b/train.bin").read_bytes()
    assert val_texts(2, "c") != first


def test_max_documents_takes_the_first_documents(corpus, tmp_path):
    meta = prepare_data(data_config(corpus, max_documents=5), tmp_path / "d")
    assert meta["n_documents"]["train"] + meta["n_documents"]["val"] == 5
    data = PreparedData.open(tmp_path / "d")
    assert sorted(texts_of(data, "train") + texts_of(data, "val"), key=lambda t: int(t.split()[1])) == [
        (corpus / f"doc{i:02d}.txt").read_text() for i in range(5)]


def test_empty_and_too_small_corpus(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text("")
    with pytest.raises(DataError, match="no non-empty documents"):
        prepare_data(data_config(folder), tmp_path / "out")
    (folder / "b.txt").write_text("only one")
    with pytest.raises(DataError, match="at least 2"):
        prepare_data(data_config(folder), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temp dir left behind


def test_existing_dir_needs_overwrite(corpus, tmp_path):
    out = tmp_path / "data"
    prepare_data(data_config(corpus, split_seed=1), out)
    before = (out / "val.bin").read_bytes()
    with pytest.raises(DataError, match="already exists"):
        prepare_data(data_config(corpus, split_seed=2), out)
    assert (out / "val.bin").read_bytes() == before
    prepare_data(data_config(corpus, split_seed=2), out, overwrite=True)
    assert PreparedData.open(out).meta["split_seed"] == 2


@pytest.mark.parametrize("damage", ["missing", "truncated", "bad_meta", "bad_npy"])
def test_open_rejects_damaged_dirs(corpus, tmp_path, damage):
    out = tmp_path / "data"
    prepare_data(data_config(corpus), out)
    if damage == "missing":
        (out / "val_eot_indices.npy").unlink()
    elif damage == "truncated":
        (out / "train.bin").write_bytes((out / "train.bin").read_bytes()[:-2])
    elif damage == "bad_meta":
        (out / "meta.json").write_text("{not json")
    else:
        (out / "eot_indices.npy").write_bytes(b"garbage")
    with pytest.raises(DataError, match="sublora data prepare") as info:
        PreparedData.open(out)
    assert "missing or corrupt" in str(info.value)


def test_verify_hashes_catches_same_size_change(corpus, tmp_path):
    out = tmp_path / "data"
    prepare_data(data_config(corpus), out)
    raw = bytearray((out / "train.bin").read_bytes())
    raw[0] ^= 1
    (out / "train.bin").write_bytes(bytes(raw))
    data = PreparedData.open(out)
    with pytest.raises(DataError, match="sha256 of train.bin"):
        data.verify_hashes()


def test_get_batch_seeded_and_shifted(corpus, tmp_path):
    prepare_data(data_config(corpus), tmp_path / "data")
    data = PreparedData.open(tmp_path / "data")
    x1, y1 = data.get_batch("train", 4, 8, torch.Generator().manual_seed(7))
    x2, y2 = data.get_batch("train", 4, 8, torch.Generator().manual_seed(7))
    x3, _ = data.get_batch("train", 4, 8, torch.Generator().manual_seed(8))
    assert x1.shape == y1.shape == (4, 8) and x1.dtype == y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert torch.equal(x1[:, 1:], y1[:, :-1])
    train = torch.from_numpy(data.train.astype(np.int64))
    for row_x, row_y in zip(x1, y1):  # each row is a real window of train.bin
        starts = [i for i in range(len(train) - 8) if torch.equal(train[i:i + 8], row_x)]
        assert any(torch.equal(train[i + 1:i + 9], row_y) for i in starts)
    with pytest.raises(DataError, match="block_size"):
        data.get_batch("val", 1, data.n_tokens("val"), torch.Generator().manual_seed(0))


def test_config_key_and_default_dir(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBLORA_CACHE", str(tmp_path / "cache"))
    base = data_config(corpus)
    assert config_key(base) == config_key(base.model_copy(update={"dir": tmp_path / "elsewhere"}))
    assert config_key(base) != config_key(data_config(corpus, split_seed=99))
    tk = DataConfig(tokenizer="tiktoken:gpt2")
    path = default_data_dir(tk)
    assert path.parent == tmp_path / "cache" / "data"
    assert path.name == f"pystdlib-tiktoken_gpt2-{config_key(tk)[:12]}"


def test_ensure_prepared_reuses_and_refuses_mismatch(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBLORA_CACHE", str(tmp_path / "cache"))
    config = data_config(corpus)
    path = ensure_prepared(config)
    assert path == default_data_dir(config)
    mtime = (path / "train.bin").stat().st_mtime_ns
    assert ensure_prepared(config) == path and (path / "train.bin").stat().st_mtime_ns == mtime

    explicit = tmp_path / "explicit"
    explicit.mkdir()  # an empty directory is filled
    assert ensure_prepared(data_config(corpus, dir=explicit)) == explicit
    with pytest.raises(DataError, match="other data settings"):
        ensure_prepared(data_config(corpus, dir=explicit, split_seed=5))
    assert PreparedData.open(explicit).meta["split_seed"] == config.split_seed
