"""Package metadata: every import is declared by the package that makes it, each package ships
py.typed and a real README, and `sublora analyze` says what to install when matplotlib is missing.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {  # distribution -> (project dir, its import roots)
    "sublora-core": ("packages/core", "src/sublora/core"),
    "sublora-projectors": ("packages/projectors", "src/sublora/projectors"),
    "sublora-bounds": ("packages/bounds", "src/sublora/bounds"),
    "sublora-cli": ("packages/cli", "src/sublora/cli"),
    "sublora-example-plugins": ("plugins_example", "src/sublora_example"),
    "sublora-lmgc": ("packages/lmgc", "src/sublora/lmgc"),
}
SUBPACKAGE = {"core": "sublora-core", "projectors": "sublora-projectors", "bounds": "sublora-bounds",
              "cli": "sublora-cli", "lmgc": "sublora-lmgc"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def _declared(project: dict) -> set[str]:
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_requirement_name(r) for r in reqs}


def _imports(src: Path) -> set[str]:
    """Every absolute import in the package (also those inside functions), as dotted names."""
    names = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("dist", list(PACKAGES))
def test_every_import_is_declared_by_the_package_that_makes_it(dist):
    project_dir, src = PACKAGES[dist]
    project = tomllib.loads((ROOT / project_dir / "pyproject.toml").read_text())["project"]
    assert project["name"] == dist
    declared = _declared(project)
    module_dists = metadata.packages_distributions()
    missing = set()
    for name in _imports(ROOT / project_dir / src):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("sublora_example", "__future__"):
            continue
        if top == "sublora":
            sub = name.split(".")[1] if "." in name else ""
            needed = {SUBPACKAGE[sub]} if sub in SUBPACKAGE else set()
        else:
            needed = {_norm(d) for d in module_dists.get(top, [top])}
        if needed - {_norm(dist)} and not needed & declared:
            missing.add(f"{name} (from {', '.join(sorted(needed))})")
    assert not missing, f"{dist} imports what it does not declare: {sorted(missing)}"


@pytest.mark.parametrize("dist", list(PACKAGES))
def test_each_package_ships_py_typed_and_a_real_readme(dist):
    project_dir, src = PACKAGES[dist]
    assert (ROOT / project_dir / src / "py.typed").is_file()
    readme = (ROOT / project_dir / "README.md").read_text()
    assert len(readme.splitlines()) >= 15, f"{dist}'s README is a stub"


def test_core_does_not_declare_what_it_does_not_use():
    project = tomllib.loads((ROOT / "packages/core/pyproject.toml").read_text())["project"]
    assert "rich" not in {_requirement_name(r) for r in project["dependencies"]}
    bounds = tomllib.loads((ROOT / "packages/bounds/pyproject.toml").read_text())["project"]
    assert "scipy" not in {_requirement_name(r) for r in bounds["dependencies"]}  # tests only: the test extra
    assert "matplotlib" in {_requirement_name(r) for r in bounds["optional-dependencies"]["plots"]}


def test_analyze_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from sublora.cli.app import app
    from sublora.core.errors import SubloraError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    result = CliRunner().invoke(app, ["analyze", str(tmp_path)])
    assert isinstance(result.exception, SubloraError)
    assert "sublora-bounds[plots]" in result.exception.hint and "--no-plots" in result.exception.hint
