"""The results table says what each number rests on: assumptions next to the value, the headline's target."""

from __future__ import annotations

from sublora.cli.console import out
from sublora.cli.report import print_certificate


def bound(name, value, assumptions=()):
    return {"name": name, "estimator": "subsampling", "target": name, "value": value, "empirical": 3.0,
            "random_guess": 8.0, "units": "bits/token", "vacuous": False, "inputs": {"alpha": 0.1},
            "assumptions": list(assumptions)}


def certificate(**headline):
    return {"bound_settings": {"delta": 0.05}, "searches": {"attempts": {"k": 1, "delta_per_attempt": 0.05}},
            "bounds": [bound("token_azuma_bpd", 4.1), bound("sequence_bpd", 3.5, ["training blocks are i.i.d."])],
            "headline": headline, "losses_bits_per_token": {"unquantized_val": 3.6, "quantized_val": 3.7,
                                                            "quantized_train": 3.7},
            "d": 10, "D": 100, "compressed_file": "model.slc", "code_bits": 80, "prefix_bits": 92.6, "extra_bits": 9.6,
            "total_bits": 102.2}


def render(cert) -> str:
    with out.capture() as captured:
        print_certificate(cert)
    return captured.get()


def test_an_assumption_is_printed_next_to_its_value():
    text = render(certificate(target="token_bpd", name="token_azuma_bpd", value=4.1, random_guess=8.0, alpha=0.1,
                              delta=0.05, candidates=1, delta_each=0.05))
    row = next(line for line in text.splitlines() if "sequence_bpd" in line)
    assert "if (1)" in row
    assert "(1) sequence_bpd holds only if: training blocks are i.i.d." in text
    assert "headline (token_bpd): token_azuma_bpd <= 4.1000" in text


def test_no_headline_says_why_and_recertification_is_shown():
    cert = certificate(target="document_bpd", name=None, value=None, candidates=0, note="vacuous by construction")
    cert["searches"]["attempts"] = {"attempt": 3, "delta_per_attempt": 0.05 / 12}
    text = render(cert)
    assert "headline: none (vacuous by construction)" in text
    assert "attempt 3" in text and "0.05 / 12" in text and ">= 0.996" in text
