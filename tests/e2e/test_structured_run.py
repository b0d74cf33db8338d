"""End to end through the CLI: `sublora run --projector structured:learned`; the gates are reported and coded."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

SUBLORA = [sys.executable, "-m", "sublora.cli.app"]


def sublora(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([*SUBLORA, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.slow
def test_learned_gates_are_trained_reported_coded_and_shown(tmp_path):
    out = tmp_path / "structured"
    result = sublora("run", "--preset", "smoke", "--projector", "structured:learned", "--out", out, "--train.threads=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "certificate verified" in result.stdout

    manifest = json.loads((out / "manifest.json").read_text())
    trained = manifest["projector_report"]
    layers = {f"h.{i}" for i in range(len(trained["gammas"]) - 1)} | {"other"}  # one gate per block, one for the head
    assert trained["mode"] == "learned" and set(trained["gammas"]) == layers and len(layers) >= 3
    assert any(abs(g - 0.5) > 1e-4 for g in trained["gammas"].values()), "the gates did not move"

    cert = json.loads((out / "certificate.json").read_text())
    assert set(cert["hypothesis"]) == {"w", "projector.gates"}  # the gates' bits are in code_bits
    gates = cert["hypothesis"]["projector.gates"]
    assert gates["length"] == len(layers)
    certified = cert["projector_report"]["gammas"]
    assert set(certified) == layers
    for gamma in certified.values():  # the report is of the quantized gates: sigmoid of a codebook value
        assert min(abs(gamma - 1 / (1 + math.exp(-c))) for c in gates["codebook"]) < 1e-5

    from sublora.core.checkpoint import read_checkpoint

    tensors, metadata = read_checkpoint(out / "checkpoint" / "best.safetensors")
    assert "projector.gates" in tensors and len(tensors["projector.gates"]) == len(layers)
    assert set(json.loads(metadata["projector_report"])["gammas"]) == layers  # gammas readable from the checkpoint

    shown = sublora("show", out)
    assert shown.returncode == 0 and '"gammas"' in shown.stdout and '"h.0"' in shown.stdout
