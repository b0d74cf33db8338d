"""Golden values of bounds.md sections 1 and 3."""

import math

import pytest

from sublora.bounds.estimators.subsampling import subsampling_bound, subsampling_bracket
from sublora.bounds.smoothing import delta_range, freedman_range, loss_range, random_guess_bpd, random_guess_topk
from sublora.core.errors import BoundError

V = 50257
LN2 = math.log(2.0)


@pytest.mark.parametrize("alpha, expected", [(0.1, 18.7870), (0.5, 15.6171), (1e-4, 28.9046)])
def test_delta_check_values(alpha, expected):
    assert delta_range(alpha, V) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("alpha", [1e-4, 1e-3, 0.05, 0.5, 0.9])
def test_delta_is_width_of_loss_range(alpha):
    lo, hi = loss_range(alpha, V)
    assert hi - lo == pytest.approx(delta_range(alpha, V), rel=1e-12)
    assert hi == pytest.approx(freedman_range(alpha, V))
    assert 0.0 <= lo <= -math.log2(1.0 - alpha) + 1e-12


def test_random_guess_reference():
    assert random_guess_bpd(V) == pytest.approx(15.617, abs=5e-4)
    for k, pct in [(1, 99.998), (10, 99.980), (100, 99.801)]:
        assert 100 * random_guess_topk(k, V) == pytest.approx(pct, abs=5e-4)
    assert random_guess_topk(10, 5) == 0.0  # k >= V: every true token is in the top k


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5])
def test_bad_alpha_rejected(alpha):
    with pytest.raises(BoundError):
        delta_range(alpha, V)


# bounds.md section 3 worked values: N = 8,009,762, n = 10,000, delta = 0.05.
# They match div = (C + extra) ln 2 with C = 100,000 taken as the prefix-free length C(h)
# itself (0.07802728). Reading 100,000 as the raw file length L and adding 2 log2 L would give
# 0.07803820 and 11.466150, which do not match the stated 0.078027 and 11.465945.
N_DOCS, N_SAMPLE, DELTA = 8_009_762, 10_000, 0.05


def test_worked_bracket_top1():
    div = (100_000 + 7) * LN2
    bracket = subsampling_bracket(N_DOCS, N_SAMPLE, div, DELTA)
    assert bracket == pytest.approx(0.078027, abs=1e-6)
    assert subsampling_bound(0.9, N_DOCS, N_SAMPLE, div, 1.0, DELTA) == pytest.approx(0.978027, abs=1e-6)


def test_worked_bpd_bound():
    div = (100_000 + 15) * LN2
    bound = subsampling_bound(10.0, N_DOCS, N_SAMPLE, div, delta_range(0.1, V), DELTA)
    assert bound == pytest.approx(11.465945, abs=1e-6)


def test_prefix_convention_does_not_match_worked_value():
    L = 100_000
    div = (L + 2 * math.log2(L) + 7) * LN2
    assert abs(subsampling_bracket(N_DOCS, N_SAMPLE, div, DELTA) - 0.078027) > 1e-5
