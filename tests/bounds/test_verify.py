"""`verify` re-derives every field it can, re-scores evidence chosen at verify time, and fails clearly.

One tiny run is trained and bounded per module; each test tampers with it and the ``run`` fixture puts
the original files back afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sublora.bounds.certificates import decode_hypothesis
from sublora.bounds.certify import certify, load_evidence
from sublora.bounds.rescore import choose
from sublora.bounds.verify import derived_fields, differences, load_certified, verify
from sublora.core.data.dataset import file_sha256
from sublora.core.errors import VerificationError
from sublora.core.train import train

FILES = ("certificate.json", "evidence.npz", "manifest.json", "bound_attempts.jsonl")


@pytest.fixture(scope="module")
def bounded(tmp_path_factory, make_tiny_config):
    run = tmp_path_factory.mktemp("verify") / "run"
    # 64 sampled blocks, so the quick check (16) re-scores only a part of them
    train(make_tiny_config(bound={"token_blocks": 64, "doc_samples": 6, "levels_grid": [], "qat_steps": 0}), run)
    certify(run)
    return run


@pytest.fixture
def run(bounded):
    """The module's bounded run; whatever a test tampers with is restored afterwards."""
    saved = {name: (bounded / name).read_bytes() for name in FILES}
    yield bounded
    for name, data in saved.items():
        (bounded / name).write_bytes(data)


def read(run):
    return json.loads((run / "certificate.json").read_text())


def write(run, cert):
    (run / "certificate.json").write_text(json.dumps(cert))


def forge_evidence(run, change):
    """Edit evidence.npz, then rewrite the certificate so that it is consistent with it: its evidence hash and
    every field verify recomputes from the evidence (bounds, headline, evaluation)."""
    path = run / "evidence.npz"
    with np.load(path) as z:
        arrays = {k: z[k].copy() for k in z.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    model, config, data = load_certified(run)
    decoded = decode_hypothesis(model, run / "model.slc", config)
    cert = read(run)
    evidence = load_evidence(path, cert["vocab_size"])
    cert.update(derived_fields(config, model, data, decoded, cert["code_bits"], evidence, run),
                evidence_sha256=file_sha256(path))
    write(run, cert)
    return cert


def test_an_untouched_run_verifies_quickly_and_fully(run):
    quick = verify(run, seed=7)
    assert any("chosen at random (seed 7; repeat with --rescore-seed 7" in c for c in quick)
    untimed = [re.sub(r" in [0-9.]+ s", "", c) for c in quick]
    assert [re.sub(r" in [0-9.]+ s", "", c) for c in verify(run, seed=7)] == untimed  # the seed repeats the check
    full = verify(run, "all")
    assert any(c.startswith("re-scored all 64 sampled token blocks") and " s: " in c for c in full)
    assert json.loads((run / "manifest.json").read_text())["status"] == "verified"


def test_the_quick_choice_is_fresh_unless_seeded(run):
    evidence = load_evidence(run / "evidence.npz", read(run)["vocab_size"])
    picks = {tuple(choose(evidence, False, seed).blocks) for seed in range(5)}
    assert len(picks) == 5  # each seed picks other blocks, so a forger cannot know which are checked
    assert np.array_equal(choose(evidence, False, 3).blocks, choose(evidence, False, 3).blocks)
    assert len(choose(evidence, True, 0).blocks) == 64


def _another_name(cert):
    return next(b["name"] for b in cert["bounds"] if b["name"] != cert["headline"]["name"])


EDITS = {  # audit item 12: each of these verified clean before
    "inputs.N": (lambda c: c["bounds"][0]["inputs"].update(N=c["bounds"][0]["inputs"]["N"] + 1), "bounds[0].inputs.N"),
    "inputs.code_bits": (lambda c: c["bounds"][1]["inputs"].update(code_bits=c["bounds"][1]["inputs"]["code_bits"] - 8),
                         "bounds[1].inputs.code_bits"),
    "total_bits": (lambda c: c.update(total_bits=c["total_bits"] - 100), "total_bits"),
    "prefix_bits": (lambda c: c.update(prefix_bits=c["prefix_bits"] - 1), "prefix_bits"),
    "empirical": (lambda c: c["bounds"][2].update(empirical=c["bounds"][2]["empirical"] - 0.5), "bounds[2].empirical"),
    "vacuous": (lambda c: [b.update(vacuous=not b["vacuous"]) for b in c["bounds"]], "bounds[0].vacuous"),
    "headline name": (lambda c: c["headline"].update(name=_another_name(c)), "headline.name"),
    "headline vacuous": (lambda c: c["headline"].update(vacuous=not c["headline"]["vacuous"]), "headline.vacuous"),
    "bound value": (lambda c: c["bounds"][0].update(value=c["bounds"][0]["value"] - 0.5), "bounds[0].value"),
    "a key added": (lambda c: c["bounds"][0].update(note="checked by hand"), "bounds[0].note: not expected"),
    "d": (lambda c: c.update(d=c["d"] + 1), "d:"),
    "codebook": (lambda c: c["hypothesis"]["w"]["codebook"].__setitem__(0, 0.0), "hypothesis.w.codebook[0]"),
    "sampled indices": (lambda c: c["evaluation"]["document_level"]["sampled_indices"].reverse(),
                        "evaluation.document_level.sampled_indices"),
    "extra_breakdown": (lambda c: c["extra_breakdown"].update(hyperparameters=0.0), "extra_breakdown.hyperparameters"),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_every_recomputable_field_is_checked(run, edit):
    change, where = EDITS[edit]
    cert = read(run)
    change(cert)
    write(run, cert)
    with pytest.raises(VerificationError, match="disagrees with what its file, settings and evidence give") as info:
        verify(run)
    assert where in info.value.message


def test_decoded_values_must_be_the_certified_ones(run):
    """The file's sha256 matches, but the certificate names other quantized values: the decoded tensor is refused."""
    cert = read(run)
    cert["hypothesis"]["w"]["values_sha256"] = "0" * 64
    write(run, cert)
    with pytest.raises(VerificationError, match="Decoded tensor 'w' differs from the certified quantized values"):
        verify(run)


def test_a_consistently_forged_evidence_file_is_caught_by_rescoring(run):
    blocks = np.random.default_rng(0).choice(64, size=48, replace=False)

    def lower_losses(arrays):
        arrays["token_loss"][:, blocks] *= 0.9

    forged = forge_evidence(run, lower_losses)
    assert forged["evidence_sha256"] == file_sha256(run / "evidence.npz")
    # every check up to re-scoring passes: the forged certificate is self-consistent
    with pytest.raises(VerificationError, match="Re-scoring the decoded model does not reproduce the certified token"):
        verify(run, "all")
    # the quick check draws 16 of the 64 blocks now: it misses 48 forged ones with probability C(16,16)/C(64,16) < 1e-14
    with pytest.raises(VerificationError, match="Re-scoring the decoded model"):
        verify(run)


def test_a_single_forged_block_is_caught_by_rescore_all(run):
    def halve_block_5(arrays):
        arrays["token_xi2"][:, 5] *= 0.5

    forge_evidence(run, halve_block_5)
    with pytest.raises(VerificationError, match=r"token xi2 of evidence block\(s\) \[5\]"):
        verify(run, "all")


def test_a_forged_document_score_is_caught_by_rescore_all(run):
    def lower_document_0(arrays):
        arrays["doc_bpd"][:, 0] -= 0.25

    forge_evidence(run, lower_document_0)
    with pytest.raises(VerificationError, match="scores of training document"):
        verify(run, "all")


def test_a_forged_loss_range_is_caught_by_rescore_all(run):
    def narrow(arrays):
        arrays["token_loss_extremes"][:, 1] -= 0.5  # a smaller largest loss: a tighter range to pay for

    forge_evidence(run, narrow)
    with pytest.raises(VerificationError, match="per-token loss range does not match"):
        verify(run, "all")


def test_evidence_scored_with_another_vocabulary_is_refused(run):
    def bigger_v(arrays):
        arrays["vocab_size"] = np.asarray(int(arrays["vocab_size"]) * 2)

    forge_evidence(run, bigger_v)
    with pytest.raises(VerificationError, match="evidence.npz was scored with V="):
        verify(run)


@pytest.mark.parametrize("array, match", [
    ("token_block_indices", "token blocks are not the 64 blocks that bound.seed=0 draws"),
    ("doc_indices", "documents are not the 6 that bound.seed"),
])
def test_a_cherry_picked_sample_is_refused(run, array, match):
    def pick(arrays):
        arrays[array][0] = (arrays[array][0] + 1) % 3  # another block / document, honestly scored or not

    forge_evidence(run, pick)
    with pytest.raises(VerificationError, match=match):
        verify(run)


def test_a_corrupt_evidence_zip_is_a_verification_error(run):
    path = run / "evidence.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="changed since the certificate was written"):
        verify(run)
    cert = read(run)
    cert["evidence_sha256"] = file_sha256(path)  # consistent hash: the file itself must be refused
    write(run, cert)
    with pytest.raises(VerificationError, match="is not a readable evidence file"):
        verify(run)
    path.write_bytes(b"not a zip at all")
    cert["evidence_sha256"] = file_sha256(path)
    write(run, cert)
    with pytest.raises(VerificationError, match="is not a readable evidence file"):
        verify(run)


def test_evidence_without_a_level_is_refused(run):
    path = run / "evidence.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("doc_")}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    cert = read(run)
    cert["evidence_sha256"] = file_sha256(path)
    write(run, cert)
    with pytest.raises(VerificationError, match="lacks the token-level or the document-level evidence"):
        verify(run)


@pytest.mark.parametrize("path", ["run", "run.checkpoint_sha256", "bound_settings", "compressed_file", "code_bits",
                                  "hypothesis", "evidence_file", "evidence_sha256", "extra_bits", "bounds", "headline",
                                  "evaluation", "bounds.0.inputs", "headline.delta"])
def test_a_certificate_missing_a_key_is_a_verification_error(run, path):
    cert = read(run)
    *parents, last = path.split(".")
    holder = cert
    for key in parents:
        holder = holder[int(key)] if isinstance(holder, list) else holder[key]
    del holder[last]
    write(run, cert)
    with pytest.raises(VerificationError) as info:
        verify(run)
    shown = path.replace(".0.", "[0].")
    assert f"no '{path}" in info.value.message or f"{shown}: missing" in info.value.message


def test_an_edited_manifest_is_refused(run):
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["train"]["lr"] *= 2  # the config edited, its hash left alone
    path.write_text(json.dumps(manifest))
    with pytest.raises(VerificationError, match="config_sha256 is not the hash of its config"):
        verify(run)


def test_the_attempts_ledger_fixes_delta(run):
    ledger = run / "bound_attempts.jsonl"
    text = ledger.read_text()
    entry = json.loads(text.splitlines()[0])
    other = json.dumps({**entry, "settings_sha256": "0" * 64}) + "\n"
    ledger.write_text(text + other)
    verify(run)  # a later attempt with other settings: this one stays attempt 1 at delta / 2
    ledger.write_text(other + text)
    with pytest.raises(VerificationError, match="searches.attempts.attempt: certificate says 1, recomputes to 2"):
        verify(run)  # an earlier attempt with other settings (a ledger edited to hide it makes this one look first)
    ledger.unlink()
    with pytest.raises(VerificationError, match="bound_attempts.jsonl is missing or empty"):
        verify(run)


def test_a_certificate_of_the_old_attempts_rule_is_refused_with_what_to_do(run):
    cert_path = run / "certificate.json"
    cert = json.loads(cert_path.read_text())
    cert_path.write_text(json.dumps({**cert, "format": "sublora-certificate/1"}))
    with pytest.raises(VerificationError, match="delta / k") as info:
        verify(run)
    assert "--force" in info.value.hint


def test_differences_compares_every_key_with_a_tolerance():
    assert differences({"a": 1.0, "b": [1, {"c": True}]}, {"a": 1.0 + 1e-12, "b": [1, {"c": True}]}) == []
    assert differences({"a": 1}, {"a": 1, "b": 2}) == ["b: not expected"]
    assert differences({"a": 1, "b": 2}, {"a": 1}) == ["b: missing"]
    assert differences({"n": 10**9}, {"n": 10**9 + 1}) == ["n: certificate says 1000000001, recomputes to 1000000000"]
    assert differences({"v": True}, {"v": 1}) != []  # a boolean is not a number
    assert differences({"x": math.nan}, {"x": math.nan}) == []
    assert differences([1, 2], [1, 2, 3]) == ["(top level): 3 items, recomputes to 2"]


def test_the_table_derives_vacuous_from_the_value(run):
    from sublora.cli.console import out
    from sublora.cli.report import print_certificate

    cert = read(run)
    for b in cert["bounds"]:
        b["vacuous"] = False  # a hand edit claiming every bound is non-vacuous
    vacuous = sum(b["value"] >= b["random_guess"] for b in cert["bounds"])
    assert vacuous  # a six-step model: some bounds are vacuous, and the edit claims otherwise
    with out.capture() as captured:
        print_certificate(cert)
    assert captured.get().count("VACUOUS") == vacuous


@pytest.mark.slow
def test_cli_verify_rescores_all_and_reports_a_corrupt_file_clearly(run):
    env = {k: v for k, v in os.environ.items() if k != "SUBLORA_DEBUG"}

    def sublora(*args):
        return subprocess.run([sys.executable, "-m", "sublora.cli.app", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=300, check=False)

    result = sublora("verify", run, "--rescore", "all")
    assert result.returncode == 0, result.stderr
    assert "re-scored all 64 sampled token blocks" in result.stdout and "certificate verified" in result.stdout
    cert = read(run)
    del cert["bounds"][0]["inputs"]
    write(run, cert)
    result = sublora("verify", run)
    assert result.returncode == 8
    assert "bounds[0].inputs: missing" in result.stderr and "internal error" not in result.stderr


def test_evidence_without_loss_extremes_is_refused(run):
    """Every estimator checks the per-token loss extremes when they are there; verify insists they are."""
    from dataclasses import replace

    from sublora.bounds.certify import vocab_record
    from sublora.bounds.rescore import draws_match

    model, config, data = load_certified(run)
    evidence = load_evidence(run / "evidence.npz")
    V = vocab_record(model, data, config)["V"]
    assert "seeded draws" in draws_match(evidence, config, data, V)
    for part in ("tokens", "documents"):
        stripped = replace(evidence, **{part: replace(getattr(evidence, part), loss_extremes=None)})
        with pytest.raises(VerificationError, match="loss_extremes"):
            draws_match(stripped, config, data, V)
