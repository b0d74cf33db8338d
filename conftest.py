"""How the suite uses two cores: pytest-xdist, one test module per work unit, the long ones first.

pyproject's addopts run `pytest` as `-n 2 --dist loadscope --no-loadscope-reorder`. Here:

- ``pytest_xdist_make_scheduler``: a work unit is a module (its module-scoped fixtures are built once),
  except that modules naming one of the session-wide runs of ``SHARED_RUNS`` form one unit per run (it
  is trained once, on one worker). pytest-xdist's own `loadgroup` cannot do this under pytest 9: the
  group it appends to ``item._nodeid`` no longer reaches ``item.nodeid``;
- on a worker, modules are collected in order of how many `slow` tests they hold (when none is
  selected, `-m "not slow"`, of how many tests they hold), and the scheduler hands out units in that
  order (a long unit started last would leave the other core idle at the end);
- without pytest-xdist (`-p no:xdist`, or not installed) `-n`, `--dist` and `--no-loadscope-reorder`
  are accepted and ignored: the suite runs in one process, in file order.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

#: Session fixtures that train or certify a run (tests/conftest.py, tests/bounds/conftest.py).
SHARED_RUNS = ("smoke_run", "certified_run", "exported_run")

ROOT = Path(__file__).resolve().parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # a worker starts with COLUMNS=80 and LINES=24 set, and the CLI's tables would wrap at 80 columns as
    # on a terminal: it gets the controller's values back
    for name, value in json.loads(os.environ.get("SUBLORA_TEST_TERMINAL", "{}")).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    # two workers, each running CLI subprocesses, share two cores: an OpenMP thread that finds no work
    # sleeps instead of spinning on a core the other worker needs (results do not depend on it)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
else:
    os.environ["SUBLORA_TEST_TERMINAL"] = json.dumps({name: os.environ.get(name) for name in ("COLUMNS", "LINES")})


def pytest_addoption(parser, pluginmanager):
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist (not loaded)", "accepted from addopts and ignored: pytest-xdist is not loaded")
    # _addoption: a conftest may not declare lowercase short options; these stand in for pytest-xdist's own
    group._addoption("-n", "--numprocesses", dest="numprocesses", default=None, help="ignored")
    group._addoption("--dist", dest="dist", default="no", help="ignored")
    group._addoption("--no-loadscope-reorder", dest="loadscopereorder", action="store_false", help="ignored")


@cache
def work_unit(module: str) -> str:
    """The module's path, or the first shared run its source names."""
    try:
        source = (ROOT / module).read_text()
    except OSError:
        return module
    return next((name for name in SHARED_RUNS if re.search(rf"\b{name}\b", source)), module)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid.split("::", 1)[0])

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the scheduler hands out units in the workers' collection order
        unit = {item.nodeid: work_unit(item.nodeid.split("::", 1)[0]) for item in items}
        slow = Counter(unit[item.nodeid] for item in items if item.get_closest_marker("slow"))
        # `-m "not slow"` (no slow test selected): the larger units first; otherwise file order after the slow count
        size = Counter(unit.values()) if not slow else Counter()
        items.sort(key=lambda item: (-slow[unit[item.nodeid]], -size[unit[item.nodeid]]))  # stable within a unit
