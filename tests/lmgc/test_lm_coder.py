"""The `lm` coder (issue 11 item 6b): a language-model prior codes the quantized subspace vector's symbols.

It decodes exactly (the coder contract), its code is sum(-log2 p) over the decided characters, it
refuses a prior other than the one its config names (at encode and decode), a prior that is not
byte-level, and a prior whose records show it saw the run's training data; it competes inside
`shortest`. The prior is lmgc_priors.text_prior(): a tiny run (2 layers x 32, context 32).
"""

from __future__ import annotations

import numpy as np
import pytest

from lmgc_priors import hf_prior_dir, numbers_prior, text_prior
from sublora.core.errors import ConfigError
from sublora.core.registry import registry
from sublora.core.testing import coder_contract
from sublora.lmgc.coder import LMCoder, SymbolGrammar
from sublora.lmgc.coder_config import LMCoderConfig
from sublora.lmgc.errors import PriorError, PriorMismatchError, PriorNotIndependentError
from sublora.lmgc.prior import load_prior

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def prior():
    return load_prior(text_prior())


@pytest.fixture(scope="module")
def options(prior):
    return {"prior": str(text_prior()), "identity": prior.identity}


def _coder(options, **extra) -> LMCoder:
    return registry("coder").config("lm", {**options, **extra}).build()


def _symbols(n: int, A: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.normal((A - 1) / 2, A / 6, n)), 0, A - 1).astype(np.int64)


def test_the_stepper_gives_the_priors_own_logits(prior):
    """Incremental calls (several tokens at once, then one at a time) == the prior's full-window forward."""
    from sublora.lmgc.codec import window_input
    from sublora.lmgc.stepper import GPT2Stepper

    tokens = list(b"0a 03 07 05 0a 0b 01 02 03 04 05 06 07")[:29]  # with the BOS, within the 32 positions
    full = prior.logits(window_input(np.array(tokens), 32, prior.bos_id, prior.pad_id))
    stepper = GPT2Stepper(prior, 32)
    stepper.feed(tokens[:4])
    rows = {3: stepper.logits()}
    for j in range(4, len(tokens)):
        stepper.feed([tokens[j]])
        rows[j] = stepper.logits()
    for j, row in rows.items():
        np.testing.assert_allclose(row.numpy(), full[j + 1].numpy(), atol=2e-5, rtol=0)
    # a full context restarts from BOS + the last 16 tokens, fed afresh
    stepper.feed(list(b"abcd"))
    restarted = stepper.logits()
    tail = (tokens + list(b"abcd"))[-16:]
    np.testing.assert_allclose(restarted.numpy(), prior.logits(window_input(np.array(tail), 32, prior.bos_id,
                                                                                  prior.pad_id))[16].numpy(), atol=2e-5)


@pytest.mark.parametrize("fmt", [{}, {"separator": ""}, {"separator": "0x", "start": "0x"},
                                 {"digits": "decimal", "separator": ", ", "start": "[", "end": "]"},
                                 {"digits": "decimal", "separator": " "}])
@pytest.mark.parametrize("A", [2, 11, 24, 255])
def test_round_trip_and_the_code_is_sum_of_log_probabilities(options, fmt, A):
    coder = _coder(options, **fmt)
    symbols = _symbols(200, A, seed=A)
    payload = coder.encode(symbols, A)
    stats = coder.stats
    assert 8 * len(payload) <= stats["ideal_bits"] + 40  # the range coder's few bytes, not per symbol
    assert not payload.endswith(b"\0")
    decoded = _coder(options, **fmt).decode(payload, symbols.size, A)  # a fresh instance: no shared state
    np.testing.assert_array_equal(decoded, symbols)


def test_fixed_characters_cost_nothing(options):
    """Hex, A = 17: "00".."0f", "10": the second digit after "1" is fixed, so it is not coded."""
    coder = _coder(options)
    symbols = _symbols(100, 17)
    coder.encode(symbols, 17)
    assert coder.stats["decisions"] == 100 + int((symbols < 16).sum())
    grammar = SymbolGrammar(coder.config, 17)
    assert grammar.options("", False) == "01" and grammar.options("1", False) == "0"
    assert SymbolGrammar(coder.config, 11).options("", False) == "0123456789a"  # one digit suffices
    decimal = SymbolGrammar(LMCoderConfig(**options, digits="decimal", separator=","), 11)
    assert decimal.options("", False) == "0123456789" and decimal.options("1", False) == "0,"
    assert decimal.options("0", False) == "," and decimal.options("10", True) == ","
    assert coder.encode(np.zeros(50, dtype=np.int64), 1) == b"" and coder.stats["decisions"] == 0


def test_passes_the_coder_contract_on_short_sequences(options, monkeypatch):
    """The contract's cases up to 64 symbols (all alphabets and shapes); the full suite is the slow test."""
    monkeypatch.setattr(coder_contract, "LENGTHS", (0, 1, 2, 3, 7, 64))
    coder_contract.check_coder_contract("lm", options)


@pytest.mark.slow
def test_passes_the_whole_coder_contract(options, monkeypatch):
    """Every alphabet and shape of the contract at every length, its 1000 and 5000 symbols cut to 256 (2-3
    characters a symbol: the 32-token context restarts 30 to 50 times). The longer cases add only length, at
    ~4x the time of the rest (50 s instead of 15 s for 1000); the other coders run them in
    tests/core/test_component_contracts.py."""
    monkeypatch.setattr(coder_contract, "LENGTHS", (*(n for n in coder_contract.LENGTHS if n < 256), 256))
    coder_contract.check_coder_contract("lm", options)


def test_another_prior_is_refused_at_encode_and_decode(options):
    other = load_prior(numbers_prior()).identity
    wrong = _coder({**options, "identity": other})
    with pytest.raises(PriorMismatchError, match="not the .* the config names") as info:
        wrong.encode(_symbols(10, 11), 11)
    assert other[:16] in str(info.value) and options["identity"] in info.value.hint
    payload = _coder(options).encode(_symbols(10, 11), 11)
    with pytest.raises(PriorMismatchError):
        _coder({**options, "identity": other}).decode(payload, 10, 11)
    with pytest.raises(PriorMismatchError):  # the right identity with another prior's path
        _coder({**options, "prior": str(numbers_prior())}).decode(payload, 10, 11)


def test_a_prior_that_is_not_byte_level_is_refused():
    hf = load_prior(hf_prior_dir())
    with pytest.raises(PriorError, match="byte-level"):
        _coder({"prior": str(hf_prior_dir()), "identity": hf.identity}).encode(_symbols(5, 11), 11)


def test_config_requires_prior_and_identity_and_checks_the_format(options):
    with pytest.raises(ConfigError, match="prior: Field required; identity: Field required"):
        registry("coder").config("lm", {})
    with pytest.raises(ConfigError, match="64-character lowercase sha256"):
        registry("coder").config("lm", {**options, "identity": "abc"})
    with pytest.raises(ConfigError, match="must not start with a digit"):
        registry("coder").config("lm", {**options, "digits": "decimal", "separator": "1"})
    with pytest.raises(ConfigError, match="non-empty"):
        registry("coder").config("lm", {**options, "digits": "decimal", "separator": ""})
    with pytest.raises(ConfigError, match="printable ASCII"):
        registry("coder").config("lm", {**options, "separator": "\u00e9"})


def test_competes_inside_shortest_and_wins_when_shortest(options):
    """A=255, 3 symbols: arithmetic stores 255 counts (64 bytes); the lm code is a few bytes and is chosen."""
    shortest = registry("coder").config("shortest", {"candidates": ["arithmetic", "lm"],
                                                     "candidate_options": {"lm": options}}).build()
    symbols = np.array([7, 130, 254])
    payload = shortest.encode(symbols, 255)
    lm_alone = _coder(options).encode(symbols, 255)
    assert len(payload) <= len(lm_alone) + 1 and len(payload) < 16
    assert payload[0] >> 7 == 1  # the flag names candidate 1, lm
    fresh = registry("coder").config("shortest", {"candidates": ["arithmetic", "lm"],
                                                  "candidate_options": {"lm": options}}).build()
    np.testing.assert_array_equal(fresh.decode(payload, 3, 255), symbols)


def test_a_prior_that_saw_the_runs_data_is_refused(options):
    """check_run_data: the prior's own data record, or the same source read from the same place, is refused."""
    import json
    from pathlib import Path

    coder = _coder(options)
    own = json.loads((Path(options["prior"]) / "manifest.json").read_text())["data"]
    with pytest.raises(PriorNotIndependentError, match="same prepared training tokens"):
        coder.check_run_data(own)
    with pytest.raises(PriorNotIndependentError, match="same data key"):
        coder.check_run_data({"config_key": own["config_key"]})
    # another split of the same files: other tokens, other key, the same source and location -> overlapping
    meta = json.loads((Path(own["dir"]) / "meta.json").read_text())
    other = {"config_key": "0" * 64, "sha256": {"train.bin": "1" * 64}, "dir": None}
    from sublora.lmgc import provenance

    saw = provenance.prior_saw(options["prior"])
    run = {**provenance.data_identity(other), "source": meta["source"]["spec"], "location": meta["source_location"]}
    assert "documents read from the same place" in provenance._matches(saw["data"], run)
    # the same files read by another source spec, or a folder inside the prior's: the same documents
    for source, location in (("text", meta["source_location"]), ("text", f"{meta['source_location']}/json")):
        assert "same place" in provenance._matches(saw["data"], {**run, "source": source, "location": location})
    # a run whose data cannot be identified (no source/location, no meta.json): no overlap can be ruled out
    with pytest.raises(PriorNotIndependentError, match="cannot be identified"):
        coder.check_run_data({"config_key": "f" * 64, "sha256": {"train.bin": "e" * 64}})
    # a run trained on other data: accepted, and the record says what was checked
    record = coder.check_run_data({"config_key": "f" * 64, "sha256": {"train.bin": "e" * 64}, "source": "text",
                                   "location": "/elsewhere/corpus"})
    assert record["identity"] == options["identity"] and record["data"]["config_key"] == own["config_key"]


def test_a_parameter_prior_is_refused_when_its_runs_were_trained_on_the_runs_data():
    from sublora.lmgc.provenance import independence_problems

    run_data = {"config_key": "a" * 64, "sha256": {"train.bin": "b" * 64}, "source": "text", "location": "/corpus/a"}
    saw = {"data": {"config_key": "c" * 64, "train_sha256": "d" * 64, "source": "lmgc", "location": "/grads"},
           "numbers_of": [{"run": "/runs/x", "config_key": "a" * 64, "train_sha256": "9" * 64, "source": "text",
                           "location": "/corpus/x"},
                          {"run": "/grads/convnet", "dataset": "sklearn-digits-8x8"}]}
    problems = independence_problems(saw, run_data)
    assert len(problems) == 1 and "gradients/weights of /runs/x" in problems[0]
    saw["numbers_of"] = saw["numbers_of"][1:]
    assert independence_problems(saw, run_data) == []
    saw["data"] = {"config_key": "c" * 64, "train_sha256": "d" * 64, "dir": "/gone"}  # its data deleted, unrecorded
    assert any("prior's training data cannot be identified" in p for p in independence_problems(saw, run_data))


def test_threads_are_restored_after_coding(options):
    import torch

    before = torch.get_num_threads()
    coder = _coder(options, threads=1)
    payload = coder.encode(_symbols(20, 11), 11)
    assert torch.get_num_threads() == before
    coder.decode(payload, 20, 11)
    assert torch.get_num_threads() == before


@pytest.mark.slow
@pytest.mark.parametrize("coder", ["shortest", "lm"])
def test_sublora_bound_and_verify_with_the_lm_coder(options, make_tiny_config, tmp_path, coder):
    """The prior named in the run's config before training: bound codes with it (alone, or inside shortest next to
    arithmetic and adaptive), verify decodes model.slc again, and bound_settings hold the prior's identity."""
    from sublora.bounds.certify import certify
    from sublora.bounds.verify import verify
    from sublora.core.train import train

    coder_options = options if coder == "lm" else {"candidates": ["arithmetic", "adaptive", "lm"],
                                                   "candidate_options": {"lm": options}}
    run = tmp_path / "run"
    train(make_tiny_config(bound={"levels": 5, "qat_steps": 0, "coder": coder, "coder_options": coder_options}), run)
    cert = certify(run)
    named = cert["bound_settings"]["coder_options"]
    assert (named if coder == "lm" else named["candidate_options"]["lm"])["identity"] == options["identity"]
    verify(run)
    checks = cert["coder_checks"] if coder == "lm" else cert["coder_checks"]["lm"]
    assert checks["identity"] == options["identity"] and checks["independent_of"] is not None


@pytest.mark.slow
def test_sublora_bound_refuses_a_prior_that_saw_the_runs_data(options, tmp_path):
    """certify calls the coder's check_run_data before any work: a run trained on the prior's own corpus is refused."""
    import copy
    import json
    from pathlib import Path

    from lmgc_priors import TINY
    from sublora.bounds.certify import certify
    from sublora.core.config import RunConfig
    from sublora.core.train import train
    from sublora.lmgc.errors import PriorNotIndependentError

    prior_manifest = json.loads((Path(options["prior"]) / "manifest.json").read_text())
    meta = json.loads((Path(prior_manifest["data"]["dir"]) / "meta.json").read_text())
    config = copy.deepcopy(TINY)
    config["data"]["source_options"] = {"path": meta["source_location"]}  # the prior's own corpus
    config["train"]["max_steps"] = 2
    config["bound"] = {"levels": 5, "qat_steps": 0, "doc_samples": 3, "token_blocks": 8, "coder": "shortest",
                       "coder_options": {"candidates": ["arithmetic", "lm"], "candidate_options": {"lm": options}}}
    run = tmp_path / "run"
    train(RunConfig.from_dict(config), run)
    with pytest.raises(PriorNotIndependentError):
        certify(run)
    assert not (run / "certificate.json").exists() and not (run / "model.slc").exists()
