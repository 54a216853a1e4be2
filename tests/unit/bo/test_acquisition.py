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


@pytest.mark.parametrize("make", [
    lambda gp, best: LogExpectedImprovement(gp, best),
    lambda gp, best: ExpectedImprovement(gp, best),
    lambda gp, best: LogExpectedImprovement(gp, best - 30.0),  # far in the tail
    lambda gp, best: ProbabilityOfImprovement(gp, best, xi=0.1),
    lambda gp, best: UpperConfidenceBound(gp, beta=1.5),
    lambda gp, best: LogExpectedImprovement(gp, best) + UpperConfidenceBound(gp),
    lambda gp, best: ExpectedImprovement(gp, best) * UpperConfidenceBound(gp),
], ids=["log-ei", "ei", "log-ei-tail", "pi", "ucb", "sum", "product"])
def test_gradients_match_finite_differences(make):
    from repurpose.bo.surrogate import GPSurrogate

    rng = np.random.default_rng(0)
    X = rng.random((25, 3))
    y = np.cos(4 * X).sum(1)
    acq = make(GPSurrogate(seed=0).fit(X, y), float(y.min()))
    points = rng.random((5, 3))
    value, grad = acq.evaluate_with_gradient(points)
    np.testing.assert_allclose(value, acq.evaluate(points), rtol=1e-5, atol=1e-6)
    h = 1e-5
    for j in range(3):
        up, down = points.copy(), points.copy()
        up[:, j] += h
        down[:, j] -= h
        numeric = (acq.evaluate(up) - acq.evaluate(down)) / (2 * h)
        np.testing.assert_allclose(grad[:, j], numeric, rtol=2e-3,
                                   atol=2e-3 * np.abs(grad).max() + 1e-12)


def test_model_without_gradients_raises_not_implemented():
    acq = LogExpectedImprovement(FixedModel([0.0], [1.0]), 0.0)
    with pytest.raises(NotImplementedError, match="FixedModel"):
        acq.evaluate_with_gradient(np.zeros((1, 1)))


def test_optimizer_refines_an_acquisition_without_gradient():
    from repurpose.bo import Real, SearchSpace
    from repurpose.bo.acquisition import Acquisition
    from repurpose.bo.optimizer import AcquisitionOptimizer

    class Bump(Acquisition):  # evaluate only: the optimiser falls back to differences
        def evaluate(self, X):
            return -np.sum((np.asarray(X) - 0.3141) ** 2, axis=1)

    space = SearchSpace({"a": Real(0.0, 1.0), "b": Real(0.0, 1.0)})
    x, score = AcquisitionOptimizer(space, n_candidates=16, n_local=2).maximize(
        Bump(), np.random.default_rng(0))
    np.testing.assert_allclose(x, [0.3141, 0.3141], atol=1e-4)


def test_local_search_starts_best_first_then_drawn_by_acquisition():
    from repurpose.bo import Real, SearchSpace
    from repurpose.bo.optimizer import AcquisitionOptimizer

    opt = AcquisitionOptimizer(SearchSpace({"a": Real(0.0, 1.0)}), n_local=4)
    scores = np.log(np.array([1e-9, 0.5, 1.0, 0.3, 1e-300, 0.2]))
    order = np.argsort(-scores)
    starts = opt._starts(scores, order, np.random.default_rng(0))
    assert starts[0] == 2 and len(set(starts.tolist())) == 4
    again = opt._starts(scores, order, np.random.default_rng(0))
    np.testing.assert_array_equal(starts, again)
    # Draws follow the acquisition: the nearly-zero candidates are (almost) never picked.
    picked = np.concatenate([opt._starts(scores, order, np.random.default_rng(s))[1:]
                             for s in range(200)])
    assert np.mean(np.isin(picked, [0, 4])) < 0.01
    # No finite score: fall back to the order itself.
    flat = np.full(6, -np.inf)
    np.testing.assert_array_equal(opt._starts(flat, np.arange(6), np.random.default_rng(0)),
                                  np.arange(4))
