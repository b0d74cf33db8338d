#!/usr/bin/env bash
# Install sublora (all packages + the example plugin, editable) into ./.venv.
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# torch: this machine has a CPU build of 2.13.0 on disk; elsewhere set TORCH_SPEC (e.g. "torch>=2.1,<2.14").
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "$TORCH_SPEC"
# Each package declares what it uses; the `test` extras add what the test suite needs (pytest,
# pytest-xdist for the two workers `pytest` runs, scipy) and sublora-cli pulls in sublora-bounds[plots]
# (matplotlib, for `sublora analyze`).
"${PIP[@]}" \
    -e "packages/core[hf,test]" \
    -e "packages/projectors[test]" \
    -e "packages/bounds[plots,test]" \
    -e "packages/cli[test,slurm]" \
    -e "packages/lmgc[digits,baselines,test]" \
    -e "plugins_example[test]"
# Editable installs leave the sources uncompiled; where PYTHONDONTWRITEBYTECODE is set, every process
# (each CLI call, each test subprocess) would compile them again: compile them once here.
.venv/bin/python -m compileall -q -j 0 packages plugins_example > /dev/null
echo "sublora installed in .venv: try .venv/bin/sublora --help"
