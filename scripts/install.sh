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
"${PIP[@]}" \
    -e "packages/core[hf]" \
    -e packages/projectors \
    -e packages/bounds \
    -e packages/cli \
    -e plugins_example \
    "pytest>=8" "matplotlib>=3.7"
echo "sublora installed in .venv: try .venv/bin/sublora --help"
