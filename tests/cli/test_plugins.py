"""`sublora plugins`: one bad plugin never breaks the listing; one component's options on demand.

A temporary distribution (a dist-info directory on PYTHONPATH, as pip would leave it) registers a
name that sublora-projectors already has and a component whose module does not exist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SUBLORA = [sys.executable, "-m", "sublora.cli.app"]


def sublora(*args, pythonpath=None):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SUBLORA_DEBUG", None)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([*SUBLORA, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def bad_plugins(tmp_path_factory):
    """A site directory holding one installed distribution with a conflicting and a broken component."""
    site = tmp_path_factory.mktemp("site")
    info = site / "sublora_bad_plugins-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sublora-bad-plugins\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        "[sublora.projectors]\n"
        "rdkron = sublora_bad_plugins.configs:Rdkron\n"
        "broken = sublora_bad_plugins_missing.deep.module.with.a.long.name:SomeConfigClassName\n"
    )
    return site


def test_listing_survives_a_duplicate_and_a_broken_plugin(bad_plugins):
    result = sublora("plugins", pythonpath=bad_plugins)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    broken = next(line for line in lines if " broken " in line and "sublora-bad-plugins" in line)
    assert "broken: ModuleNotFoundError: No module named 'sublora_bad_plugins_missing'" in broken
    conflicts = [line for line in lines if "conflict:" in line]
    assert any("also registered by sublora-projectors" in line for line in conflicts)
    assert any("also registered by sublora-bad-plugins" in line for line in conflicts)
    assert any(" dense " in line and " ok" in line for line in lines)  # everything else still listed
    assert "2 component(s) cannot be used; `sublora plugins -v`" in result.stdout


def test_verbose_prints_each_problem_in_full(bad_plugins):
    result = sublora("plugins", "-v", pythonpath=bad_plugins)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # rich may wrap; the words are all there, none cut
    assert ("projector 'rdkron' is registered twice: by sublora-bad-plugins 1.2.3 (sublora_bad_plugins.configs:Rdkron)"
            " and by sublora-projectors") in text
    assert ("Could not load 'sublora_bad_plugins_missing.deep.module.with.a.long.name:SomeConfigClassName': "
            "ModuleNotFoundError") in text
    assert "hint: Uninstall all but one of sublora-bad-plugins, sublora-projectors" in text
    assert any("┃ description" in line for line in result.stdout.splitlines()[:4])  # descriptions with -v


def test_json_listing_has_status_and_full_error(bad_plugins):
    result = sublora("plugins", "--format", "json", pythonpath=bad_plugins)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by = {(r["name"], r["package"]): r for r in rows}
    assert by[("rdkron", "sublora-bad-plugins")]["status"] == "conflict"
    assert by[("rdkron", "sublora-projectors")]["status"] == "conflict"
    broken = by[("broken", "sublora-bad-plugins")]
    assert broken["status"] == "broken" and "SomeConfigClassName" in broken["error"] and broken["hint"]
    assert by[("dense", "sublora-projectors")]["status"] == "ok"


def test_selecting_a_conflicting_name_fails_naming_both(bad_plugins):
    result = sublora("plugins", "rdkron", pythonpath=bad_plugins)
    assert result.returncode == 3
    assert "registered twice" in result.stderr and "sublora-bad-plugins" in result.stderr
    assert "Traceback" not in result.stderr


def test_detail_of_a_component_with_variants():
    result = sublora("plugins", "structured:learned")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "projector structured:learned" in out and "sublora-projectors" in out
    assert "uniform, fixed, learned (default: uniform)" in out
    assert "sublora.projector (e.g. --sublora.projector=structured:learned); options in sublora.projector_options" in out
    row = next(line for line in out.splitlines() if line.startswith("│ allocation_ratio"))
    assert "float" in row and "0.5" in row and ">= 0.0, <= 1.0" in row


def test_detail_as_json():
    result = sublora("plugins", "grid", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["kind"], doc["name"], doc["package"]) == ("quantizer", "grid", "sublora-example-plugins")
    assert doc["settings"] == {"fixed_codebook": True}
    (levels,) = doc["options"]
    assert levels == {"name": "levels", "type": "int", "required": False, "default": 11,
                      "constraints": [">= 2", "<= 255"], "description": levels["description"]}


def test_variant_typo_gets_a_did_you_mean():
    result = sublora("plugins", "rdkron:qrr")
    assert result.returncode == 2
    assert "Unknown variant 'qrr' of projector 'rdkron'. Did you mean 'rdkron:qr'?" in result.stderr
    result = sublora("plugins", "rdkrom")
    assert result.returncode == 2 and "Did you mean 'rdkron' (projector)?" in result.stderr


def test_kind_filter():
    result = sublora("plugins", "--kind", "coders", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert {r["kind"] for r in json.loads(result.stdout)} == {"coder"}
    result = sublora("plugins", "--kind", "codr")
    assert result.returncode == 2 and "Unknown component kind" in result.stderr


def test_plugins_is_fast_and_imports_no_torch(bad_plugins, fresh_python):
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from sublora.cli.app import app\n"
        "for args in (['plugins'], ['plugins', '-v'], ['plugins', 'structured:learned'], ['plugins', 'pacbayes']):\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == 0, r.output\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'peft', 'scipy', 'numpy') if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(bad_plugins), os.environ.get("PYTHONPATH", "")])}
    assert fresh_python(code, env=env) == []
