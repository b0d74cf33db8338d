"""The plugin-author docs work as written: the pyproject snippet of docs/plugins.md is a complete,
buildable project, and every estimator-kit function docs/plugins/bound.md (and the kit's own
docstring) names exists with the parameter names shown."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sublora.bounds.estimator_kit as kit
import tomllib

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def _pyproject_snippet() -> str:
    (snippet,) = [b for b in _blocks((DOCS / "plugins.md").read_text(encoding="utf-8"), "toml") if "[project]" in b]
    return snippet


def test_the_pyproject_snippet_is_a_complete_project_table():
    data = tomllib.loads(_pyproject_snippet())
    project, build = data["project"], data["build-system"]
    assert project["name"] and project["version"], "pip refuses a [project] without name and version"
    assert build["requires"] and build["build-backend"], "[build-system] needs requires and build-backend"
    assert any(r.startswith("sublora-core") for r in project["dependencies"])
    assert project["entry-points"]["sublora.quantizers"] == {"grid": "my_plugins.configs:GridConfig"}


def test_the_pyproject_snippet_builds_a_wheel_that_registers_the_config(tmp_path):
    """The page's layout (src/my_plugins/configs.py holding the page's GridConfig) plus its
    pyproject.toml, built by the backend the snippet names, without network or isolation."""
    snippet = _pyproject_snippet()
    backend = tomllib.loads(snippet)["build-system"]["build-backend"]
    pytest.importorskip(backend.split(":")[0])
    page = (DOCS / "plugins.md").read_text(encoding="utf-8")
    (config_code,) = [b for b in _blocks(page, "python") if "class GridConfig(QuantizerConfig)" in b]
    package = tmp_path / "src" / "my_plugins"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "configs.py").write_text(config_code)
    (tmp_path / "pyproject.toml").write_text(snippet)
    dist = tmp_path / "dist"
    build = f"import {backend.split(':')[0]} as b, sys; print(b.build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", build, str(dist)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    wheel = dist / done.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "my_plugins/configs.py" in names, names
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    assert re.search(r"\[sublora\.quantizers\]\s*\ngrid\s*=\s*my_plugins\.configs:GridConfig", text), text

    sys.path.insert(0, str(tmp_path / "src"))
    try:
        configs = importlib.import_module("my_plugins.configs")
    finally:
        sys.path.remove(str(tmp_path / "src"))
        sys.modules.pop("my_plugins.configs", None)
        sys.modules.pop("my_plugins", None)
    from sublora.core.quantizer import QuantizerConfig

    assert issubclass(configs.GridConfig, QuantizerConfig) and configs.GridConfig(margin=0.5).levels == 11


KIT_FUNCTIONS = sorted(n for n in kit.__all__ if callable(getattr(kit, n)))
#: `name(a, b, c=default)`: a signature as written in the docs (arguments that are plain names)
SIGNATURE = re.compile(r"`{1,2}(\w+)\(((?:\s*\w+(?:=[^,()`]*)?\s*,?)*)\)`{1,2}")


def _parameters(args: str) -> list[str]:
    return [a.split("=")[0].strip() for a in args.split(",") if a.strip()]


def _kit_section() -> str:
    page = (DOCS / "plugins" / "bound.md").read_text(encoding="utf-8")
    start = page.index("## `sublora.bounds.estimator_kit`")
    return page[start : page.index("\n## ", start + 1)]


def _check_signatures(text: str, where: str) -> set[str]:
    """Every `name(args)` written with plain argument names either is a kit function with exactly
    those parameters or is not a kit name at all; returns the kit functions seen."""
    seen = set()
    for name, args in SIGNATURE.findall(text):
        if name not in kit.__all__:
            continue
        documented = _parameters(args)
        actual = list(inspect.signature(getattr(kit, name)).parameters)
        signature = inspect.signature(getattr(kit, name))
        assert documented == actual, f"{where}: {name}({', '.join(documented)}), but the function is {name}{signature}"
        seen.add(name)
    return seen


def test_every_function_the_kit_page_names_exists_with_the_documented_parameters():
    section = _kit_section()
    rows = re.findall(r"^\| `(\w+)\(([^`]*)\)` \|", section, flags=re.MULTILINE)
    assert rows, "no function table in the estimator-kit section"
    for name, args in rows:
        assert name in kit.__all__ and callable(getattr(kit, name)), f"docs/plugins/bound.md: {name} is not in the kit"
        actual = list(inspect.signature(getattr(kit, name)).parameters)
        assert _parameters(args) == actual, f"docs/plugins/bound.md: {name}({args}) but the function takes {actual}"
    _check_signatures(section, "docs/plugins/bound.md")
    assert {name for name, _ in rows} == set(KIT_FUNCTIONS), "the page's table must list every kit function"


def test_the_kit_docstring_gives_every_function_with_its_parameters():
    seen = _check_signatures(kit.__doc__, "sublora.bounds.estimator_kit docstring")
    assert seen == set(KIT_FUNCTIONS), f"not in the kit's docstring: {sorted(set(KIT_FUNCTIONS) - seen)}"
