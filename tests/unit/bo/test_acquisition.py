"""Acquisitions against closed forms; log-EI finite and monotone far in the tail."""
import numpy as np
import pytest
from scipy.stats import norm

from repurpose.bo import (ExpectedImprovement, LogExpectedImprovement,
                          ProbabilityOfImprovement, UpperConfidenceBound)
from repurpose.bo.acquisition import log_h


class FixedModel:
    """A stand-in surrogate with given means and variances (one per row)."""

    def __init__(self, mean, var):
        self.mean, self.var = np.asarray(mean, float), np.asarray(var, float)

    def predict(self, X):
        return self.mean[: len(X)], self.var[: len(X)]


def test_ei_matches_direct_formula():
    rng = np.random.default_rng(0)
    mean, sigma, best = rng.normal(size=50), rng.uniform(0.1, 2.0, 50), 0.3
    z = (best - mean) / sigma
    direct = sigma * (z * norm.cdf(z) + norm.pdf(z))
    ei = ExpectedImprovement(FixedModel(mean, sigma ** 2), best).evaluate(np.zeros((50, 1)))
    np.testing.assert_allclose(ei, direct, rtol=1e-10)


def test_log_h_matches_direct_in_normal_range():
    z = np.linspace(-8, 5, 200)
    np.testing.assert_allclose(log_h(z), np.log(z * norm.cdf(z) + norm.pdf(z)), rtol=1e-8)


def test_log_ei_finite_and_monotone_in_far_tail():
    z = -np.logspace(-1, 8, 2000)[::-1]  # from -1e8 up to -0.1
    values = log_h(z)
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) > 0)
    # Asymptote: log h(z) ~ -z^2/2 - log(sqrt(2 pi)) - 2 log|z|.
    zz = -1e4
    expected = -zz ** 2 / 2 - 0.5 * np.log(2 * np.pi) - 2 * np.log(-zz)
    assert log_h(zz) == pytest.approx(expected, rel=1e-10)


def test_log_ei_continuous_at_branch_points():
    for z0 in (-1.0, -1e3):
        left, right = log_h(np.nextafter(z0, -np.inf)), log_h(np.nextafter(z0, np.inf))
        assert left == pytest.approx(right, rel=1e-9)


def test_log_ei_orders_points_where_ei_underflows():
    model = FixedModel([50.0, 60.0], [1.0, 1.0])
    assert np.all(ExpectedImprovement(model, 0.0).evaluate(np.zeros((2, 1))) == 0)
    log_ei = LogExpectedImprovement(model, 0.0).evaluate(np.zeros((2, 1)))
    assert np.all(np.isfinite(log_ei)) and log_ei[0] > log_ei[1]


def test_pi_and_ucb_closed_forms():
    model = FixedModel([0.0, 1.0], [4.0, 1.0])
    X = np.zeros((2, 1))
    np.testing.assert_allclose(ProbabilityOfImprovement(model, 0.5).evaluate(X),
                               np.log(norm.cdf([0.25, -0.5])), rtol=1e-12)
    np.testing.assert_allclose(UpperConfidenceBound(model, beta=2.0).evaluate(X), [4.0, 1.0])


def test_acquisitions_compose():
    model = FixedModel([0.0, 1.0], [4.0, 1.0])
    X = np.zeros((2, 1))
    ucb = UpperConfidenceBound(model, beta=1.0)
    np.testing.assert_allclose((ucb + ucb).evaluate(X), 2 * ucb.evaluate(X))
    np.testing.assert_allclose((ucb * ucb).evaluate(X), ucb.evaluate(X) ** 2)
