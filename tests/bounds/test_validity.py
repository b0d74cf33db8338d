"""Monte-Carlo coverage: each bound fails in at most a delta fraction of trials, and the test
has the power to catch a deliberately wrong bound.

Losses are Bernoulli (the worst case for Hoeffding-type terms) scaled to [lo, lo + Delta];
complexity is 0 bits (a single fixed hypothesis), so failures can only come from the
concentration terms.
"""

import math

import numpy as np

from sublora.bounds.estimators.azuma import azuma_bound
from sublora.bounds.estimators.freedman import freedman_bound, lambda_grid
from sublora.bounds.estimators.subsampling import subsampling_bound

DELTA, TRIALS = 0.05, 2000
#: Largest failure count consistent with a true rate <= delta (3 binomial standard deviations).
ALLOWED = DELTA * TRIALS + 3 * math.sqrt(DELTA * (1 - DELTA) * TRIALS)


def failures(true_mean, bound):
    count = int(np.sum(true_mean > bound))
    print(f"failures {count} / {TRIALS} (allowed {ALLOWED:.0f})")
    return count


def iid_trials(N, n, p, lo, Delta, seed):
    """True risk and subsampled empirical risk: N training documents, n drawn with replacement."""
    rng = np.random.default_rng(seed)
    train_ones = rng.binomial(N, p, TRIALS)
    sample_ones = rng.binomial(n, train_ones / N)
    return lo + Delta * p, lo + Delta * sample_ones / n


def test_subsampling_bound_coverage_and_power():
    lo, Delta = 0.3, 18.8
    for N, n, p in [(200, 100, 0.5), (50, 200, 0.5), (5000, 300, 0.1)]:
        risk, empirical = iid_trials(N, n, p, lo, Delta, seed=N + n)
        assert failures(risk, subsampling_bound(empirical, N, n, 0.0, Delta, DELTA)) <= ALLOWED

    risk, empirical = iid_trials(50, 200, 0.5, lo, Delta, seed=1)
    # Wrong 1: drop the log terms (bound = empirical risk when div = 0).
    wrong = empirical + Delta * (math.sqrt(0.0 / (2 * 50)) + math.sqrt(0.0 / (2 * 200)))
    assert failures(risk, wrong) > ALLOWED
    # Wrong 2: forget that the training set is itself a sample (Hoeffding over the n draws only).
    wrong = empirical + Delta * math.sqrt(math.log(1 / DELTA) / (2 * 200))
    assert failures(risk, wrong) > ALLOWED


def markov_chain(n, p_of_prev, seed):
    """X_k in {0, 1} with P(X_k = 1 | past) = p_of_prev(X_{k-1}); returns X, mu (trials x n)."""
    rng = np.random.default_rng(seed)
    x = np.empty((TRIALS, n))
    mu = np.empty((TRIALS, n))
    prev = rng.integers(0, 2, TRIALS).astype(float)
    u = rng.random((TRIALS, n))
    for k in range(n):
        mu[:, k] = p_of_prev(prev)
        x[:, k] = prev = (u[:, k] < mu[:, k]).astype(float)
    return x, mu


def test_azuma_bound_coverage_and_power():
    lo, Delta, n = 1.0, 15.6, 400
    x, mu = markov_chain(n, lambda prev: 0.35 + 0.3 * prev, seed=2)
    losses, true_mean = lo + Delta * x, lo + Delta * mu.mean(axis=1)
    empirical = losses.mean(axis=1)
    assert failures(true_mean, azuma_bound(empirical, n, 0.0, Delta, DELTA)) <= ALLOWED
    # Wrong: half the range (Delta / 2 used as if it were the range), and no log term at all.
    assert failures(true_mean, empirical + Delta / 2 * math.sqrt(math.log(1 / DELTA) / (2 * n))) > ALLOWED
    assert failures(true_mean, empirical + Delta * math.sqrt(0.0 / (2 * n))) > ALLOWED

    # Subsampled: m tokens drawn with replacement; delta split in half between the two terms.
    for m in (300, 50):
        idx = np.random.default_rng(m).integers(0, n, (TRIALS, m))
        sampled = np.take_along_axis(losses, idx, axis=1).mean(axis=1)
        bound = azuma_bound(sampled, n, 0.0, Delta, DELTA / 2) + Delta * math.sqrt(math.log(2 / DELTA) / (2 * m))
        assert failures(true_mean, bound) <= ALLOWED
    # Wrong: treat the m = 50 sampled tokens as if all n had been evaluated (no subsampling term).
    assert failures(true_mean, azuma_bound(sampled, n, 0.0, Delta, DELTA)) > ALLOWED


def test_freedman_bound_coverage_and_power():
    n, Delta = 2000, 1.0  # losses in [0, 1] bits; Y_k >= 0 so X_k - Y_k <= Delta
    lambdas = lambda_grid()
    x, mu = markov_chain(n, lambda prev: 0.05 + 0.1 * prev, seed=4)
    true_mean, empirical = mu.mean(axis=1), x.mean(axis=1)
    for y in (mu, np.full_like(mu, 0.3)):  # an exact and a poor predictable proxy Y_k
        sigma_hat = (((y - x) / Delta) ** 2).mean(axis=1)
        assert failures(true_mean, freedman_bound(empirical, sigma_hat, n, 0.0, Delta, DELTA, lambdas)) <= ALLOWED
    sigma_hat = (((mu - x) / Delta) ** 2).mean(axis=1)
    # Wrong 1: drop the psi(lambda) Sigma_hat term (pretend the variance is free).
    assert failures(true_mean, freedman_bound(empirical, 0.0 * sigma_hat, n, 0.0, Delta, DELTA, lambdas)) > ALLOWED
    # Wrong 2: drop the log term ln(|K| / delta).
    wrong = empirical + Delta * np.min(((-np.log1p(-lambdas) - lambdas) / lambdas) * sigma_hat[:, None], axis=1)
    assert failures(true_mean, wrong) > ALLOWED
