"""Sources: deterministic order, stdlib exclusions, text/jsonl reading, hf on a local file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sublora.core.errors import ConfigError, DataError
from sublora.core.registry import registry


def build(spec: str, **options):
    return registry("source").config(spec, options).build()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake_stdlib(tmp_path):
    root = tmp_path / "lib"
    for rel in ["os.py", "abc.py", "json/__init__.py", "json/decoder.py", "email/mime/text.py",
                "test/test_os.py", "lib2to3/tests/data.py", "idlelib/idle_test/t.py", "idlelib/run.py",
                "site-packages/pkg/mod.py", "notes.txt"]:
        write(root / rel, f"# {rel}\n")
    (root / "bad.py").write_bytes(b"x = '\xff'\n")
    return root


def test_pystdlib_sorted_without_tests(fake_stdlib):
    source = build("pystdlib", root=str(fake_stdlib))
    docs = list(source.documents())
    ids = [doc_id for doc_id, _ in docs]
    assert ids == ["abc.py", "email/mime/text.py", "idlelib/run.py", "json/__init__.py",
                   "json/decoder.py", "os.py"]
    assert dict(docs)["os.py"] == "# os.py\n"
    assert source.skipped_files == ["bad.py"]  # not UTF-8: skipped and counted, never read as U+FFFD
    assert list(build("pystdlib", root=str(fake_stdlib)).documents()) == docs
    assert source.count() == len(ids) + 1
    with pytest.raises(DataError, match="bad.py is not valid UTF-8"):
        list(build("pystdlib", root=str(fake_stdlib), undecodable="refuse").documents())
    assert source.describe()["python_version"]


def test_pystdlib_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list(build("pystdlib", root=str(tmp_path / "nope")).documents())


def test_pystdlib_real_stdlib_excludes_tests():
    source = build("pystdlib")
    files = source.files()
    assert len(files) > 500
    assert files == sorted(files)
    for rel in files:
        assert not {"test", "tests", "idle_test", "site-packages"} & set(Path(rel).parts[:-1]), rel


def test_source_options_are_validated():
    with pytest.raises(ConfigError, match="unknown field"):
        registry("source").config("pystdlib", {"rooot": "/x"})


def test_text_folder_sorted_and_filtered(tmp_path):
    write(tmp_path / "b.txt", "bee")
    write(tmp_path / "a/z.md", "zed")
    write(tmp_path / "a/skip.csv", "1,2")
    write(tmp_path / ".hidden/h.txt", "hidden")
    write(tmp_path / "d.jsonl", json.dumps({"text": "one"}) + "\n\n" + json.dumps({"text": "two", "id": 2}) + "\n")
    source = build("text", path=str(tmp_path))
    assert list(source.documents()) == [("a/z.md", "zed"), ("b.txt", "bee"), ("d.jsonl:1", "one"), ("d.jsonl:3", "two")]
    assert source.count() is None
    only_txt = build("text", path=str(tmp_path), extensions=["txt"])
    assert list(only_txt.documents()) == [("b.txt", "bee")] and only_txt.count() == 1


def test_text_single_file_and_glob(tmp_path):
    write(tmp_path / "x/1.txt", "one")
    write(tmp_path / "x/2.txt", "two")
    write(tmp_path / "y/3.txt", "three")
    assert list(build("text", path=str(tmp_path / "x/2.txt")).documents()) == [("2.txt", "two")]
    texts = [t for _, t in build("text", path=str(tmp_path / "*/*.txt")).documents()]
    assert texts == ["one", "two", "three"]


def test_text_jsonl_custom_field_and_errors(tmp_path):
    path = write(tmp_path / "d.jsonl", json.dumps({"body": "hello"}) + "\n")
    assert list(build("text", path=str(path), text_field="body").documents()) == [("d.jsonl:1", "hello")]
    with pytest.raises(DataError, match=r"no string field 'text' \(found: body\)"):
        list(build("text", path=str(path)).documents())
    write(tmp_path / "bad.jsonl", "{not json\n")
    with pytest.raises(DataError, match="not valid JSON"):
        list(build("text", path=str(tmp_path / "bad.jsonl")).documents())


def test_text_path_matching_nothing_names_it(tmp_path):
    missing = str(tmp_path / "nothing-*.txt")
    with pytest.raises(DataError, match="nothing-"):
        list(build("text", path=missing).documents())


def test_hf_source_on_local_jsonl(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytest.importorskip("datasets")
    path = write(tmp_path / "d.jsonl", "".join(json.dumps({"text": f"doc {i}", "n": i}) + "\n" for i in range(5)))
    options = {"name": "json", "data_files": str(path), "cache_dir": str(tmp_path / "cache")}
    docs = list(build("hf", **options).documents())
    assert docs == [(f"json/train:{i}", f"doc {i}") for i in range(5)]
    assert [t for _, t in build("hf", max_documents=2, **options).documents()] == ["doc 0", "doc 1"]
    with pytest.raises(DataError, match="no column 'body'"):
        list(build("hf", text_field="body", **options).documents())


def test_hf_source_without_datasets_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DataError, match=r"pip install sublora-core\[hf\]"):
        list(build("hf", name="json").documents())


def test_jsonl_lines_that_are_not_objects_are_named_by_file_and_line(tmp_path):
    """One reader for .jsonl (text sources and finetuning tasks): blank lines skipped, the bad line named."""
    from sublora.core.data.sources import jsonl_records
    from sublora.core.errors import DataError

    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "x"}\n\n{"text": "y", "n": 1}\n')
    assert list(jsonl_records(path)) == [(1, {"text": "x"}), (3, {"text": "y", "n": 1})]
    path.write_text('{"text": "x"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"a\.jsonl:2 is not a JSON object \(it is a list\)"):
        list(jsonl_records(path))
    path.write_text('{"text": "x"}\n{oops\n')
    with pytest.raises(DataError, match=r"a\.jsonl:2 is not valid JSON"):
        list(jsonl_records(path))
