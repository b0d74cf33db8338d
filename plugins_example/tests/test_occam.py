"""The Occam estimator against the bound contract: structure, monotonicity and coverage by simulation."""

from sublora.core.testing import check_bound_contract, simulate_tokens


def test_contract():
    report = check_bound_contract("occam")
    assert {c.result for c in report} == {"document_occam_bpd", "document_occam_top1", "document_occam_top10"}


def test_token_evidence_alone_gives_no_result():
    from sublora.core.registry import registry
    from sublora.core.testing import minimal_complexity

    evidence = simulate_tokens(1)[0].evidence
    assert registry("bound").config("occam").build().compute(evidence, minimal_complexity(), 0.05) == []
