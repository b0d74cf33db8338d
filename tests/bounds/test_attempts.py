"""Re-certifying is a choice after seeing data (docs/bounds.md section 8): recorded, refused, or paid for."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from sublora.bounds.attempts import LEDGER, read_ledger, settings_sha256
from sublora.bounds.certify import certify
from sublora.core.errors import BoundError
from sublora.core.train import train

OUTPUTS = ("model.slc", "certificate.json", "evidence.npz")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny_config):
    run = tmp_path_factory.mktemp("attempts") / "run"
    train(make_tiny_config(bound={"levels": 5, "qat_steps": 0}), run)
    return run


@pytest.fixture
def run(trained, tmp_path):
    path = tmp_path / "run"
    shutil.copytree(trained, path)
    return path


def digests(run):
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_first_certificate_is_one_attempt_at_full_delta(run):
    cert = certify(run)
    attempts = cert["searches"]["attempts"]
    assert attempts["k"] == 1 and attempts["delta_per_attempt"] == cert["bound_settings"]["delta"]
    assert all(b["inputs"]["delta"] == cert["bound_settings"]["delta"] for b in cert["bounds"])
    assert [e["settings_sha256"] for e in read_ledger(run)] == [attempts["settings_sha256"]]


def test_identical_settings_again_are_free_and_reproduce_the_certificate(run):
    first = certify(run)
    again = certify(run, force=True)
    assert again["searches"]["attempts"]["k"] == 1
    assert [b["value"] for b in again["bounds"]] == [b["value"] for b in first["bounds"]]
    assert len(read_ledger(run)) == 2  # both recorded, one distinct


def test_new_settings_are_refused_before_any_work_without_charge(run):
    certify(run)
    before, ledger = digests(run), (run / LEDGER).read_text()
    with pytest.raises(BoundError, match="certified before with other bound settings") as info:
        certify(run, force=True, overrides={"bound.seed": 7})
    assert "--charge" in info.value.hint and "delta / 2" in info.value.hint
    assert digests(run) == before and (run / LEDGER).read_text() == ledger


def test_charged_recertification_splits_delta_over_the_attempts(run):
    first = certify(run)
    cert = certify(run, force=True, overrides={"bound.seed": 7}, charge=True)
    assert cert["searches"]["attempts"]["k"] == 2 and cert["searches"]["attempts"]["delta_per_attempt"] == 0.025
    assert all(b["inputs"]["delta"] == 0.025 for b in cert["bounds"])
    # going back to the first settings is not free any more: both draws were seen
    back = certify(run, force=True, overrides={"bound.seed": 0})
    assert back["searches"]["attempts"]["k"] == 2
    pairs = list(zip(first["bounds"], back["bounds"]))
    assert all(b["value"] >= a["value"] for a, b in pairs)  # (a bound already at its maximum stays there)
    assert all(b["value"] > a["value"] for a, b in pairs if b["name"].startswith("token_"))


def test_settings_that_change_no_number_are_not_an_attempt(make_tiny_config):
    a = make_tiny_config().bound
    assert settings_sha256(a) == settings_sha256(a.model_copy(update={"batch_size": 3}))
    assert settings_sha256(a) != settings_sha256(a.model_copy(update={"seed": 3}))
    assert settings_sha256(a) != settings_sha256(a.model_copy(update={"alphas": [0.1]}))


def test_the_ledger_is_plain_json_lines(run):
    certify(run)
    line = json.loads((run / LEDGER).read_text().splitlines()[0])
    assert set(line) == {"time", "settings_sha256"}


def test_the_manifest_names_the_components_the_certificate_used(run):
    """A bound.* override may pick another coder: the manifest's components block follows it."""
    certify(run, overrides={"bound.coder": "arithmetic", "bound.estimators": ["azuma"]})
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["components"]["coder"]["spec"] == "arithmetic"
    assert [b["spec"] for b in manifest["components"]["bound"]] == ["azuma"]
    assert manifest["components"]["coder"]["distribution"] == "sublora-bounds"
