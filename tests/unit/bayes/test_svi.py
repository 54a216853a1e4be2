"""SVI on a conjugate model whose posterior is known, data-parallel steps, and optimisers.

Bayesian linear regression with known noise: the exact posterior is Gaussian with precision
``Lambda = X^T X / sigma^2 + I / s^2`` and mean ``Lambda^-1 X^T y / sigma^2``. The optimum of
the ELBO over mean-field Gaussians has the exact mean and standard deviations
``1 / sqrt(Lambda_jj)`` (smaller than the marginal ones, ``sqrt((Lambda^-1)_jj)``, when the
inputs are correlated, as here).
"""
import mxnet as mx
import numpy as np
import pytest
from _vi_models import LinearGaussian, Quadratic, one_part

from repurpose.bayes import (SVI, GaussianPrior, LaplacePrior, MeanFieldNormal,
                             ReparamEstimator, ScoreFunctionEstimator, inverse_softplus,
                             make_optimizer)
from repurpose.context import split_batch
from repurpose.exceptions import InvalidParameterError


@pytest.mark.parametrize("local, batch_size", [(True, 24), (False, 6)],
                         ids=["local-fullbatch", "weights-minibatch"])
def test_vi_recovers_the_conjugate_gaussian_posterior(linear_data, local, batch_size, seed):
    X, y = linear_data
    n = len(X)
    model = LinearGaussian(2, noise_std=0.5)
    mean, cov, precision = model.exact_posterior(X.astype(np.float64), y.astype(np.float64),
                                                 prior_std=1.0)
    mean_field_std = 1.0 / np.sqrt(np.diag(precision))
    assert np.all(np.sqrt(np.diag(cov)) > 1.08 * mean_field_std)  # the two are told apart

    posterior = MeanFieldNormal.from_init(np.zeros(2), init_scale=0.1)
    svi = SVI(model, posterior, GaussianPrior(1.0), ReparamEstimator(local=local), "adam",
              0.05, grad_scale=1.0 / n)
    rng = np.random.default_rng(seed)
    locs, stds = [], []
    for step in range(1500):
        index = rng.permutation(n)[:batch_size]
        svi.step(one_part(X[index], y[index]), n / batch_size, rng, n_draws=4)
        if step >= 1000:  # Polyak averaging of the last iterates
            locs.append(posterior.to_numpy()[0])
            stds.append(posterior.std_numpy())
    np.testing.assert_allclose(np.mean(locs, axis=0), mean, atol=0.25 * mean_field_std.min())
    np.testing.assert_allclose(np.mean(stds, axis=0), mean_field_std, rtol=0.05)


def _run(contexts, estimator, prior, steps=15):
    """Parameters after a few SVI steps with the batch split across ``contexts``."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((10, 2)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0]) + 0.3 * rng.standard_normal(10)).astype(np.float32)
    posterior = MeanFieldNormal.from_init(np.array([0.1, 0.2]), 0.2, contexts=contexts)
    svi = SVI(LinearGaussian(2, 0.5), posterior, prior, estimator, "adam", 0.05, 0.1)
    for _ in range(steps):
        parts = [(c, x, t) for (c, x), (_, t) in zip(split_batch(X, contexts),
                                                     split_batch(y, contexts))]
        svi.step(parts, 1.0, rng, n_draws=2)
    return np.concatenate(posterior.to_numpy())


@pytest.mark.parametrize("make_estimator", [
    lambda: ReparamEstimator(local=True), lambda: ReparamEstimator(local=False),
    lambda: ScoreFunctionEstimator()], ids=["local", "weights", "score"])
@pytest.mark.parametrize("prior", [GaussianPrior(1.0), LaplacePrior(1.0)], ids=["gauss", "lap"])
def test_several_contexts_step_like_one(make_estimator, prior):
    one = _run([mx.cpu(0)], make_estimator(), prior)
    three = _run([mx.cpu(0), mx.cpu(1), mx.cpu(2)], make_estimator(), prior)
    np.testing.assert_allclose(three, one, rtol=1e-4, atol=1e-5)
    initial = np.concatenate([[0.1, 0.2], np.full(2, inverse_softplus(0.2))])
    assert np.abs(one - initial).max() > 0.05  # the steps did move the parameters


def test_sgd_optimizer_ok():
    posterior = MeanFieldNormal(np.zeros(3), 0.0)
    svi = SVI(Quadratic(3), posterior, GaussianPrior(), ReparamEstimator(), "sgd", 0.1)
    svi.step(one_part(np.ones(3), np.ones(3)), 1.0, np.random.default_rng(0))
    assert posterior.to_numpy()[0].min() > 0  # moved towards a = 1


@pytest.mark.parametrize("name, rate, match", [
    ("adamw", 0.01, r"optimizer must be one of .*Did you mean 'adam'"),
    ("adam", 0.0, "learning_rate must be a positive finite number, got 0.0"),
    ("adam", float("inf"), "learning_rate must be a positive finite number"),
])
def test_make_optimizer_error(name, rate, match):
    with pytest.raises(InvalidParameterError, match=match):
        make_optimizer(name, rate)
