"""The sweep analysis' summary table (sublora.bounds.analysis.tables), on hand-made records."""

from __future__ import annotations

from pathlib import Path

import pytest

from sublora.bounds.analysis.collect import RunRecord
from sublora.bounds.analysis.tables import summarize
from sublora.core.errors import ConfigError


def record(method: str, bound: float, budget: int = 100, replicate: str = "s0") -> RunRecord:
    return RunRecord(name=f"{method}_{replicate}", path=Path("."), budget=budget, method=method, replicate=replicate,
                     projector="rdkron", code_bits=1000, total_bits=1010.0, empirical=3.0, bound=bound,
                     bound_name="token_azuma_bpd", complexity_term=0.5, confidence_term=0.1, random_guess=8.0,
                     train_bpt=3.0, val_bpt=3.1)


def test_improvement_is_against_the_named_baseline_and_an_unknown_one_is_refused():
    records = [record("uniform", 4.0, replicate="s0"), record("uniform", 4.2, replicate="s1"),
               record("learned", 3.9, replicate="s0"), record("learned", 3.7, replicate="s1")]
    by_method = {s.method: s for s in summarize(records)}  # default: the method named 'uniform'
    assert by_method["learned"].improvement_pct == pytest.approx(100 * (4.1 - 3.8) / 4.1)
    against_learned = {s.method: s for s in summarize(records, baseline="learned")}
    assert against_learned["uniform"].improvement_pct == pytest.approx(100 * (3.8 - 4.1) / 3.8)
    with pytest.raises(ConfigError, match="No method named 'nosuch'") as info:
        summarize(records, baseline="nosuch")
    assert "uniform, learned" in info.value.hint


def test_gamma_depth_correlation_is_spearmans_rho_over_the_numbered_layers(tmp_path):
    from scipy.stats import spearmanr

    from sublora.bounds.analysis.tables import gamma_depth, write_tables

    rising = record("learned", 3.8, replicate="s0")
    rising.gammas = {"h.0": 0.2, "h.1": 0.3, "h.2": 0.5, "h.3": 0.9, "head": 0.1}  # the head: no depth, left out
    mixed = record("learned", 3.9, replicate="s1")
    mixed.gammas = {"h.0": 0.4, "h.1": 0.7, "h.2": 0.2, "h.3": 0.5}
    flat = record("uniform", 4.0)
    flat.gammas = {"h.0": 0.5, "h.1": 0.5, "h.2": 0.5}  # no ranking: left out
    depth = gamma_depth([rising, mixed, flat])
    assert [d.run for d in depth] == [rising.name, mixed.name] and depth[0].layers == 4
    assert depth[0].rho == pytest.approx(1.0)
    assert depth[1].rho == pytest.approx(spearmanr([0, 1, 2, 3], [0.4, 0.7, 0.2, 0.5]).statistic)
    written = write_tables(summarize([rising, mixed, flat]), tmp_path)
    assert (tmp_path / "gamma_depth.csv") in written
    assert (tmp_path / "gamma_depth.csv").read_text().count("\n") == 3


def test_spearman_matches_scipy_and_its_permutation_p_value():
    import numpy as np
    from scipy.stats import permutation_test, spearmanr

    from sublora.bounds.analysis.tables import spearman

    rng = np.random.default_rng(3)
    for n in (4, 7, 12):
        x, y = np.arange(n), np.round(rng.random(n), 1)  # rounded: ties
        rho, p = spearman(x, y)
        assert rho == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
        exact = permutation_test((y,), lambda v: spearmanr(x, v).statistic, permutation_type="pairings",
                                 alternative="two-sided", n_resamples=np.inf if n <= 8 else 20_000, random_state=0)
        assert p == pytest.approx(exact.pvalue, abs=1e-9 if n <= 8 else 0.02)
    assert spearman([0, 1, 2, 3], [1, 2, 3, 4]) == (pytest.approx(1.0), pytest.approx(2 / 24))
