"""Minibatch ELBO: the likelihood scaled by N / |B|, the KL term not scaled, so the full-batch
ELBO (and its gradient) is the expectation of the minibatch estimates; and the estimate's
mean equals the closed-form ELBO of Bayesian linear regression."""
import itertools
import math

import numpy as np
import pytest
from _vi_models import LinearGaussian, one_part
from mxnet import autograd

from repurpose.bayes import (GaussianPrior, LaplacePrior, MeanFieldNormal, ReparamEstimator,
                             inverse_softplus, minibatch_scale)
from repurpose.exceptions import InvalidParameterError

LOC, STD = np.array([0.6, -0.2]), np.array([0.2, 0.4])
MODEL = LinearGaussian(2, 0.5)
ESTIMATORS = {False: ReparamEstimator(local=False), True: ReparamEstimator(local=True)}


def _estimate(X, y, data_scale, seed, prior, local=False):
    """ELBO, log-likelihood term, KL and surrogate gradient of one estimate."""
    posterior = MeanFieldNormal(LOC, inverse_softplus(STD))
    estimate = ESTIMATORS[local].estimate(MODEL, posterior, prior, one_part(X, y), data_scale,
                                          np.random.default_rng(seed))
    autograd.backward(estimate.surrogates)
    grads = np.concatenate([g.asnumpy() for g in posterior.gradients(estimate.contexts)])
    return (estimate.elbo.asscalar(), estimate.log_likelihood.asscalar(),
            estimate.kl.asscalar(), grads)


@pytest.mark.parametrize("prior", [GaussianPrior(1.0), LaplacePrior(0.7)], ids=["gauss", "lap"])
def test_full_batch_elbo_is_the_mean_over_all_minibatches(linear_data, prior, seed):
    X, y = linear_data[0][:8], linear_data[1][:8]
    # The same weight draw everywhere (same seed), so only the data differ.
    full = _estimate(X, y, 1.0, seed, prior)
    subsets = list(itertools.combinations(range(8), 3))  # all 56 minibatches of 3
    scale = minibatch_scale(8, 3)
    estimates = [_estimate(X[list(s)], y[list(s)], scale, seed, prior) for s in subsets]
    elbo, ll, kl, grads = (np.array([e[i] for e in estimates]) for i in range(4))
    assert elbo.mean() == pytest.approx(full[0], rel=1e-5)
    assert ll.mean() == pytest.approx(full[1], rel=1e-5)
    np.testing.assert_allclose(kl, full[2], rtol=1e-6)  # the KL term is not scaled
    np.testing.assert_allclose(grads.mean(axis=0), full[3], rtol=1e-4, atol=1e-5)


def test_epoch_of_equal_minibatches_averages_to_the_full_batch(linear_data, seed):
    X, y = linear_data
    order = np.random.default_rng(seed).permutation(len(X))
    full = _estimate(X, y, 1.0, seed, GaussianPrior(1.0))
    parts = [_estimate(X[b], y[b], minibatch_scale(24, 6), seed, GaussianPrior(1.0))
             for b in np.split(order, 4)]
    assert np.mean([p[0] for p in parts]) == pytest.approx(full[0], rel=1e-5)
    # a KL scaled like the likelihood would differ: 4 x KL vs KL
    assert all(p[2] == pytest.approx(full[2], rel=1e-6) for p in parts)


@pytest.mark.parametrize("local", [False, True])
def test_elbo_estimate_mean_matches_closed_form(linear_data, local, seed):
    X, y = linear_data
    posterior = MeanFieldNormal(LOC, inverse_softplus(STD))
    rng = np.random.default_rng(seed)
    prior = GaussianPrior(1.0)
    values = [ESTIMATORS[local].estimate(MODEL, posterior, prior, one_part(X, y), 1.0, rng,
                                         10).elbo.asscalar() for _ in range(100)]
    expected_ll, _, _ = MODEL.expected(X.astype(np.float64), y.astype(np.float64), LOC, STD)
    kl = np.sum(-np.log(STD) + (STD**2 + LOC**2) / 2 - 0.5)
    se = np.std(values, ddof=1) / math.sqrt(len(values))
    assert abs(np.mean(values) - (expected_ll - kl)) < 4.5 * se + 1e-3


def test_minibatch_scale_ok():
    assert minibatch_scale(1000, 64) == pytest.approx(15.625)
    assert minibatch_scale(10, 10) == 1.0


@pytest.mark.parametrize("n_total, n_batch, match", [
    (10, 20, "20 samples is larger than the data"),
    (10, 0, "n_batch must be an integer >= 1"),
    (2.5, 1, "n_total must be an integer"),
])
def test_minibatch_scale_error(n_total, n_batch, match):
    with pytest.raises(InvalidParameterError, match=match):
        minibatch_scale(n_total, n_batch)
