"""`sublora lmgc ...` is found through the `sublora.cli` entry-point group; `collect` from the command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sublora.cli import subapps


def _app():
    from sublora.cli.app import app

    return app


def test_sublora_lists_the_lmgc_sub_app():
    result = CliRunner().invoke(_app(), ["--help"])
    assert result.exit_code == 0 and "lmgc" in result.output
    assert any(e.name == "lmgc" and e.value == "sublora.lmgc.cli:app" and e.distribution == "sublora-lmgc"
               for e in subapps.registered())


def test_collect_writes_the_directory_and_refuses_a_non_empty_one(tmp_path):
    pytest.importorskip("sklearn")
    out = tmp_path / "g"
    args = ["lmgc", "collect", "--network", "mlp", "--width", "8", "--depth", "1", "--steps", "4",
            "--grad-interval", "2", "--seed", "7", "--out", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "2 gradient checkpoints" in result.output
    index = json.loads((out / "index.json").read_text())
    assert [c["step"] for c in index["checkpoints"]] == [2, 4] and index["seeds"]["seed"] == 7
    assert index["source"]["command"].startswith("sublora")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = CliRunner().invoke(_app(), args)
    assert again.exit_code != 0 and "not empty" in str(again.exception)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing overwritten
    assert CliRunner().invoke(_app(), [*args, "--force"]).exit_code == 0


def test_a_broken_or_duplicate_sub_app_breaks_only_itself(monkeypatch):
    import typer

    from sublora.core.errors import PluginLoadError

    fake = [subapps.SubApp("broken", "no_such_module_xyz:app", "sublora-broken"),
            subapps.SubApp("twice", "sublora.lmgc.cli:app", "dist-a"),
            subapps.SubApp("twice", "sublora.lmgc.cli:app2", "dist-b"),
            subapps.SubApp("train", "sublora.lmgc.cli:app", "dist-c")]  # a built-in name: ignored
    monkeypatch.setattr(subapps, "registered", lambda: fake)
    app = typer.Typer()
    app.command("train")(lambda: None)
    app.command("other")(lambda: None)
    subapps.add_subapps(app)
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(names) == ["broken", "other", "train", "twice"]
    for name, says in (("broken", "failed to load"), ("twice", "registered twice")):
        result = CliRunner().invoke(app, [name, "anything"])
        assert isinstance(result.exception, PluginLoadError) and says in str(result.exception), name
