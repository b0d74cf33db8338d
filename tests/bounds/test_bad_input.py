"""Bad input to `bound` / `verify`: clear errors, and nothing already written is overwritten."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from sublora.bounds import certify as certify_module
from sublora.bounds.certify import certify
from sublora.bounds.verify import verify
from sublora.core.errors import BoundError, ConfigError, VerificationError
from sublora.core.train import train

OUTPUTS = ("model.slc", "certificate.json", "evidence.npz")


def digests(run):
    return {name: hashlib.sha256((run / name).read_bytes()).hexdigest() for name in OUTPUTS}


@pytest.fixture(scope="module")
def bounded(tmp_path_factory, make_tiny_config):
    runs = {}
    for seed in (0, 1):
        run = tmp_path_factory.mktemp(f"bounded{seed}")
        # the bound settings of the session's certified_run: every refusal below happens before or around scoring
        train(make_tiny_config(sublora={"seed": seed},
                               bound={"token_blocks": 64, "doc_samples": 6, "levels_grid": [], "qat_steps": 0}), run)
        certify(run)
        runs[seed] = run
    return runs


@pytest.mark.parametrize("override, match", [
    ({"bound.doc_samples": 10_000}, r"doc_samples=10000 exceeds the \d+ training documents"),
    ({"bound.token_blocks": 10**7}, "token_blocks=10000000 exceeds the"),
])
def test_subsample_larger_than_the_data_is_refused_before_anything_is_written(bounded, override, match):
    run = bounded[0]
    before = digests(run)
    with pytest.raises(BoundError, match=match) as info:
        certify(run, force=True, overrides=override)
    assert "Set --bound." in info.value.hint
    assert digests(run) == before


@pytest.mark.parametrize("override, field", [
    ({"bound.alphas": [0.0, 0.1]}, "alphas"), ({"bound.alphas": [1.0]}, "alphas"),
    ({"bound.delta": 0.0}, "delta"), ({"bound.delta": 1.0}, "delta"), ({"bound.delta": 1.5}, "delta"),
    ({"bound.doc_samples": 0}, "doc_samples"), ({"bound.token_blocks": 0}, "token_blocks"),
])
def test_invalid_settings_name_the_field(bounded, override, field):
    run = bounded[0]
    before = digests(run)
    with pytest.raises(ConfigError, match=f"bound.{field}"):
        certify(run, force=True, overrides=override)
    assert digests(run) == before


def test_a_failure_midway_leaves_the_old_certificate_intact(bounded, monkeypatch, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bounded[0], run)
    before = digests(run)

    def broken(*args, **kwargs):
        raise RuntimeError("interrupted while scoring")

    monkeypatch.setattr(certify_module, "_collect_evidence", broken)
    with pytest.raises(RuntimeError, match="interrupted"):  # a different model.slc would be written
        certify(run, force=True, overrides={"bound.levels": 5}, charge=True)
    assert digests(run) == before
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]  # no temporary file left behind
    # the attempt reached the evaluation sample, so it counts: the old certificate no longer pays for every attempt
    assert len((run / "bound_attempts.jsonl").read_text().splitlines()) == 2


def test_existing_certificate_is_not_overwritten_without_force(bounded):
    run = bounded[0]
    before = digests(run)
    with pytest.raises(Exception, match="already holds a certificate"):
        certify(run)
    assert digests(run) == before


def test_certificate_or_model_file_of_another_run_is_refused(bounded, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(bounded[1], other)
    shutil.copy(bounded[0] / "model.slc", other / "model.slc")  # the right size, the wrong file
    with pytest.raises(VerificationError, match="does not match the certificate's sha256"):
        verify(other)
    shutil.copytree(bounded[1], other, dirs_exist_ok=True)
    shutil.copy(bounded[0] / "certificate.json", other / "certificate.json")  # a certificate of another run
    with pytest.raises(VerificationError, match="another config|changed since"):
        verify(other)
    cert = json.loads((bounded[1] / "certificate.json").read_text())
    cert["bounds"][0]["value"] -= 0.5  # a bound edited by hand
    (other / "certificate.json").write_text(json.dumps(cert))
    shutil.copy(bounded[1] / "model.slc", other / "model.slc")
    with pytest.raises(VerificationError, match="recomputes to"):
        verify(other)
