"""End to end through the CLI: `sublora run --preset smoke`, the certificate, verify, tampering, plugins."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SUBLORA = [sys.executable, "-m", "sublora.cli.app"]

pytestmark = pytest.mark.slow  # every test reads a `sublora run` or trains through the CLI


def sublora(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}
    return subprocess.run([*SUBLORA, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


# smoke_run (tests/conftest.py): `sublora run --preset smoke --train.threads=1`, once per session


def test_run_prints_the_results_table_and_verifies(smoke_run):
    out, result = smoke_run
    for name in ("document_bpd", "document_top1", "document_top10", "document_top100", "token_azuma_bpd",
                 "token_freedman_bpd", "certificate verified"):
        assert name in result.stdout
    for f in ("manifest.json", "config.yaml", "metrics.jsonl", "model.slc", "certificate.json", "evidence.npz",
              "checkpoint/best.safetensors", "checkpoint/last.safetensors"):
        assert (out / f).is_file(), f


def test_certificate_holds_every_input(smoke_run):
    out, _ = smoke_run
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["compressed_file"] == "model.slc"
    assert cert["code_bits"] == 8 * (out / "model.slc").stat().st_size
    import hashlib

    assert cert["compressed_sha256"] == hashlib.sha256((out / "model.slc").read_bytes()).hexdigest()
    names = {b["name"] for b in cert["bounds"]}
    assert {"document_bpd", "document_top1", "token_azuma_bpd", "token_freedman_bpd"} <= names
    for b in cert["bounds"]:
        for key in ("name", "estimator", "value", "empirical", "random_guess", "units", "inputs", "vacuous"):
            assert key in b
        for key in ("N", "n", "delta", "alpha", "Delta", "code_bits", "prefix_bits", "extra_bits"):
            assert key in b["inputs"], (b["name"], key)
        assert b["value"] >= b["empirical"]
        assert b["vacuous"] == (b["value"] >= b["random_guess"])
    freedman = next(b for b in cert["bounds"] if b["name"] == "token_freedman_bpd")
    for key in ("sigma_hat", "lambda", "grid_size"):
        assert key in freedman["inputs"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "verified"
    assert cert["run"]["config_sha256"] == manifest["config_sha256"]


def test_azuma_bound_recomputed_by_hand(smoke_run):
    """Independent recomputation from the certificate's inputs and the saved evidence (docs/bounds.md 3-5.1)."""
    out, _ = smoke_run
    cert = json.loads((out / "certificate.json").read_text())
    b = next(b for b in cert["bounds"] if b["name"] == "token_azuma_bpd")
    i = b["inputs"]
    L = cert["code_bits"]
    prefix = L + 2 * math.log2(L)
    assert i["prefix_bits"] == pytest.approx(prefix)
    settings = cert["bound_settings"]
    extra = settings["hyper_bits"] + math.log2(len(settings["alphas"]))  # the levels search is free
    assert i["extra_bits"] == pytest.approx(extra)
    ev = np.load(out / "evidence.npz")
    V = int(ev["vocab_size"])
    assert cert["vocab_size"] == V == cert["vocab"]["V"]
    alphas = [float(x) for x in ev["alphas"]]
    delta = settings["delta"] / 2  # attempt 1 of the ledger: delta / (1 * 2)
    sampled = bool(ev["token_meta"][2])
    n_train = int(ev["token_meta"][0])

    def bound(a):  # the default subsample limit of azuma is empirical Bernstein at f delta / |A|, f = 1/2
        Delta = math.log2(1 + (1 - alphas[a]) * V / alphas[a])
        x = ev["token_loss"][a]
        d1 = delta / 2 if sampled else delta
        mean = float(x.mean())
        if sampled:
            m, d2 = x.size, delta / 2 / len(alphas)
            mean += math.sqrt(2 * x.var(ddof=1) * math.log(2 / d2) / m) + 7 * Delta * math.log(2 / d2) / (3 * (m - 1))
        return mean + Delta * math.sqrt(((prefix + extra) * math.log(2) + math.log(1 / d1)) / (2 * n_train))

    values = [bound(a) for a in range(len(alphas))]
    a = int(np.argmin(values))
    assert i["alpha"] == alphas[a] and b["empirical"] == pytest.approx(float(ev["token_loss"][a].mean()))
    assert b["value"] == pytest.approx(values[a], rel=1e-9)


def test_verify_detects_a_corrupted_compressed_file(smoke_run, tmp_path):
    import shutil

    out, _ = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert sublora("verify", copy).returncode == 0
    data = bytearray((copy / "model.slc").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.slc").write_bytes(bytes(data))
    result = sublora("verify", copy)
    assert result.returncode == 8
    assert "model.slc" in result.stderr and "Traceback" not in result.stderr


def test_rerun_on_a_finished_run_verifies_it_and_changes_nothing(smoke_run):
    """The same command twice (a script, a retry) succeeds: the second run verifies; no file's bytes change."""
    out, _ = smoke_run
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = sublora("run", "--preset", "smoke", "--train.threads=1", "--out", out)  # the same settings
    assert result.returncode == 0, result.stdout + result.stderr
    assert "already holds a verified certificate" in result.stdout and "certificate verified" in result.stdout
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_show_reads_the_run(smoke_run):
    out, _ = smoke_run
    result = sublora("show", out)
    assert result.returncode == 0 and "token_azuma_bpd" in result.stdout and "status: verified" in result.stdout


def test_example_plugin_trains_through_the_cli(tmp_path):
    out = tmp_path / "plugin"
    result = sublora("train", "--preset", "smoke", "--projector", "hashing", "--out", out, "--train.max_steps=4")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["projector"] == "hashing" and manifest["status"] == "trained"


def test_sample_generates_reproducible_text_from_each_checkpoint(smoke_run):
    out, _ = smoke_run
    a = sublora("sample", out, "--prompt", "def ", "-n", "40", "--seed", "3")
    b = sublora("sample", out, "--prompt", "def ", "-n", "40", "--seed", "3")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout.startswith("def ") and len(a.stdout.rstrip("\n")) >= 4 + 20
    certified = sublora("sample", out, "--prompt", "def ", "-n", "10", "--checkpoint", "certified", "-t", "0")
    assert certified.returncode == 0, certified.stderr
    bad = sublora("sample", out, "--checkpoint", "newest")
    assert bad.returncode == 2 and "best, last or certified" in bad.stderr
