"""The library API: docs/library.md runs as written, the top-level names are stable, cheap and public."""

from __future__ import annotations

import ast
import importlib
import math
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sublora.bounds.certify import complexity_for
from sublora.bounds.prior import complexity
from sublora.core.config import RunConfig
from sublora.core.errors import BoundError

PAGE = Path(__file__).resolve().parents[2] / "docs" / "library.md"
PACKAGES = ("sublora.core", "sublora.bounds", "sublora.projectors")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE.read_text(), flags=re.DOTALL | re.MULTILINE)


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+|\d+", text)]


@pytest.mark.slow  # fresh processes: ~5 s
def test_the_library_page_runs_as_written_and_prints_what_it_shows(tmp_path):
    """Every python block of the page, in order, in a fresh one-thread process: CPU time under 15 s,
    the output the page shows (numbers to 0.01), every bound of the example non-vacuous."""
    code = _blocks("python")
    assert 40 <= len(code[0].splitlines()) <= 60, "the complete example should stay about 50 lines"
    script = tmp_path / "library_example.py"
    script.write_text("\n".join(code))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    before = os.times()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300, check=False)
    wall = time.perf_counter() - t0
    after = os.times()
    assert out.returncode == 0, out.stderr
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    assert cpu < 15.0, f"the page's code took {cpu:.1f} s of CPU ({wall:.1f} s wall)"
    shown = _blocks("text")[0].strip().splitlines()
    printed = out.stdout.strip().splitlines()[: len(shown)]
    for want, got in zip(shown, printed, strict=True):
        assert want.split()[0] == got.split()[0]
        assert _numbers(got) == pytest.approx(_numbers(want), abs=0.01), (want, got)
    for line in printed[:4]:  # every bound of the example is below its random guess, above its empirical value
        value, empirical, guess = map(float, re.fullmatch(
            r"\S+\s+(\S+) .* empirical (\S+), random guess (\S+)", line).groups())
        assert empirical <= value < guess, line


def test_importing_the_packages_pulls_in_no_torch():
    code = ("import sys; import sublora.core, sublora.bounds, sublora.projectors; "
            "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
            "assert not heavy, heavy")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves_and_none_is_private_or_a_module(package):
    pkg = importlib.import_module(package)
    names = pkg.__all__
    assert names and len(set(names)) == len(names)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    for name in names:
        assert not name.startswith("_"), name
        # a name equal to a submodule's would turn into that module once the submodule is imported
        assert name not in submodules, f"{package}.{name} is also a submodule"
        value = getattr(pkg, name)
        assert getattr(value, "__name__", name) == name, f"{package}.{name} is {value!r}"
        assert name in dir(pkg)
    with pytest.raises(AttributeError, match="no attribute '_smoothed_loss'"):
        pkg._smoothed_loss  # noqa: B018 - private helpers stay private


@pytest.mark.parametrize("package", PACKAGES)
def test_type_checkers_see_the_names_that_are_loaded(package):
    """__all__, the lazy table and the TYPE_CHECKING imports name the same objects from the same modules."""
    pkg = importlib.import_module(package)
    assert set(pkg.__all__) == set(pkg._EXPORTS)
    tree = ast.parse(Path(pkg.__file__).read_text())
    guarded = [node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"]
    imported = {alias.name: stmt.module for block in guarded for stmt in block.body for alias in stmt.names}
    assert imported == pkg._EXPORTS


def test_from_import_star_gives_the_public_names_only():
    namespace: dict = {}
    exec("from sublora.bounds import *", namespace)  # noqa: S102 - what a user of import * gets
    assert {"score_logits", "complexity", "encode_compressed"} <= set(namespace)
    assert not [n for n in namespace if n.startswith("_") and n != "__builtins__"]


def test_complexity_from_explicit_settings_is_what_a_run_is_charged():
    config = RunConfig.from_dict({"bound": {"hyper_bits": 5.5, "alphas": [0.01, 0.1, 0.5]}})
    run = complexity_for(config, 4000)
    mine = complexity(4000, hyper_bits=5.5, alphas=[0.5, 0.01, 0.1])
    assert mine == run
    assert run.extra_breakdown == {"hyperparameters": 5.5, "alpha_grid": math.log2(3)}
    assert mine.total_bits == pytest.approx(4000 + 2 * math.log2(4000) + 5.5 + math.log2(3))
    more = complexity(4000, hyper_bits=0, alphas=[0.1], extra={"architecture": 2.0})
    assert more.extra_breakdown == {"hyperparameters": 0, "alpha_grid": 0.0, "architecture": 2.0}
    assert more.extra_bits == 2.0


@pytest.mark.parametrize("kwargs, message", [
    ({"code_bits": 0, "hyper_bits": 7, "alphas": [0.1]}, "code_bits"),
    ({"code_bits": 8.5, "hyper_bits": 7, "alphas": [0.1]}, "code_bits"),
    ({"code_bits": 8, "hyper_bits": -1, "alphas": [0.1]}, "hyper_bits"),
    ({"code_bits": 8, "hyper_bits": 7, "alphas": []}, "alphas"),
    ({"code_bits": 8, "hyper_bits": 7, "alphas": [0.0]}, "alphas"),
    ({"code_bits": 8, "hyper_bits": 7, "alphas": [0.1], "extra": {"alpha_grid": 1.0}}, "alpha_grid"),
])
def test_complexity_refuses_what_it_cannot_charge(kwargs, message):
    with pytest.raises(BoundError, match=message):
        complexity(**kwargs)
