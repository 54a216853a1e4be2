"""ELBO gradient estimators against gradients derived by hand.

On ``Quadratic`` (E_q[log p] in closed form) and on Bayesian linear regression, with a
Gaussian prior (analytic KL) and a Laplace prior (Monte-Carlo KL, closed-form gradient from
the folded-normal mean):

* single draws with a fixed seed give exactly the hand-derived gradient;
* means over many seeded draws agree with the exact ELBO gradient within Monte-Carlo error;
* the reparameterisation gradient has a lower variance than the score-function gradient,
  the baseline lowers the latter's, and local reparameterisation lowers the former's.
"""
import math

import mxnet as mx
import numpy as np
import pytest
from _vi_models import LinearGaussian, Quadratic, one_part
from mxnet import autograd
from scipy import special

from repurpose.bayes import (Baseline, GaussianPrior, LaplacePrior, MeanFieldNormal,
                             ReparamEstimator, ScoreFunctionEstimator, inverse_softplus)
from repurpose.exceptions import InvalidParameterError

LOC = np.array([0.5, -1.0, 0.2])
STD = np.array([0.3, 0.8, 0.5])
A = np.array([1.0, 0.5, -1.0])
C = np.array([2.0, 1.0, 0.5])
PRIOR_SCALE = 0.9
DATA_SCALE = 3.0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _posterior(loc=LOC, std=STD):
    return MeanFieldNormal(loc, inverse_softplus(std))


def _kl_grads(prior, loc, std):
    """d KL / d loc and d KL / d std for the prior, by hand."""
    b = prior.scale
    if isinstance(prior, GaussianPrior):
        return loc / b**2, -1.0 / std + std / b**2
    return (special.erf(loc / (std * math.sqrt(2))) / b,
            -1.0 / std + math.sqrt(2 / math.pi) * np.exp(-loc**2 / (2 * std**2)) / b)


def _exact_surrogate_grads(prior, offset=0.0):
    """Gradient of -ELBO (likelihood scaled by DATA_SCALE) w.r.t. loc and raw scale."""
    _, d_loc, d_std = Quadratic.expected(LOC, STD, A, C, offset)
    k_loc, k_std = _kl_grads(prior, LOC, STD)
    raw = inverse_softplus(STD)
    return (-(DATA_SCALE * d_loc - k_loc),
            -(DATA_SCALE * d_std - k_std) * _sigmoid(raw))


def _grads(estimator, model, posterior, prior, parts, rng, n_calls, n_draws=1,
           data_scale=DATA_SCALE):
    """Gradients of the surrogate (loc, raw) of n_calls estimates, stacked."""
    out = []
    for _ in range(n_calls):
        estimate = estimator.estimate(model, posterior, prior, parts, data_scale, rng, n_draws)
        autograd.backward(estimate.surrogates)
        out.append(np.concatenate([g.asnumpy() for g in posterior.gradients(
            estimate.contexts)]))
    return np.array(out, dtype=np.float64)


ESTIMATORS = {
    "reparam": lambda: ReparamEstimator(local=False),
    "score": lambda: ScoreFunctionEstimator(baseline=True),
}
PRIORS = {"gaussian": lambda: GaussianPrior(PRIOR_SCALE),
          "laplace": lambda: LaplacePrior(PRIOR_SCALE)}


# ------------------------------------------------------------------ one draw, by hand
@pytest.mark.parametrize("prior_name", PRIORS)
def test_reparam_single_draw_gradient_by_hand(prior_name, seed):
    prior = PRIORS[prior_name]()
    posterior = _posterior()
    estimator = ReparamEstimator(local=False)
    estimate = estimator.estimate(Quadratic(3), posterior, prior, one_part(C, A), DATA_SCALE,
                                  np.random.default_rng(seed))
    autograd.backward(estimate.surrogates)
    eps = np.random.default_rng(seed).standard_normal((1, 3), dtype=np.float32)[0]
    w = LOC + STD * eps
    sig = _sigmoid(inverse_softplus(STD))
    d_w = DATA_SCALE * C * (w - A)  # d(-scaled log-lik)/dw
    if prior_name == "gaussian":  # analytic KL
        k_loc, k_std = _kl_grads(prior, LOC, STD)
        exp_loc, exp_std = d_w + k_loc, d_w * eps + k_std
        kl_value = np.sum(np.log(PRIOR_SCALE / STD) + (STD**2 + LOC**2) / (2 * PRIOR_SCALE**2)
                          - 0.5)
    else:  # MC KL at the same draw: log q(w) - log p(w) with w = loc + std * eps
        # d/d loc: log q(w) does not change with loc along the path; log p(w): sign(w) / b
        # d/d std: -1/std (log q) + sign(w) * eps / b (log p)
        exp_loc = d_w + np.sign(w) / PRIOR_SCALE
        exp_std = d_w * eps - 1.0 / STD + np.sign(w) * eps / PRIOR_SCALE
        kl_value = np.sum(-np.log(STD) - 0.5 * eps**2 - 0.5 * np.log(2 * np.pi)
                          + np.abs(w) / PRIOR_SCALE + np.log(2 * PRIOR_SCALE))
    np.testing.assert_allclose(posterior.loc().grad.asnumpy(), exp_loc, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(posterior.raw_scale().grad.asnumpy(), exp_std * sig, rtol=1e-4,
                               atol=1e-5)
    ll = -0.5 * np.sum(C * (w - A) ** 2)
    assert estimate.kl.asscalar() == pytest.approx(kl_value, rel=1e-5)
    assert estimate.log_likelihood.asscalar() == pytest.approx(DATA_SCALE * ll, rel=1e-5)
    assert estimate.elbo.asscalar() == pytest.approx(DATA_SCALE * ll - kl_value, rel=1e-5)


def test_score_single_draw_gradient_by_hand_uses_the_previous_baseline(seed):
    prior = GaussianPrior(PRIOR_SCALE)
    posterior = _posterior()
    baseline = Baseline(0.5)
    baseline.update(4.0)  # b = 4 for this step
    estimator = ScoreFunctionEstimator(baseline=baseline)
    estimate = estimator.estimate(Quadratic(3), posterior, prior, one_part(C, A), DATA_SCALE,
                                  np.random.default_rng(seed))
    autograd.backward(estimate.surrogates)
    eps = np.random.default_rng(seed).standard_normal((1, 3), dtype=np.float32)[0]
    w = LOC + STD * eps
    cost = DATA_SCALE * 0.5 * np.sum(C * (w - A) ** 2)
    k_loc, k_std = _kl_grads(prior, LOC, STD)
    sig = _sigmoid(inverse_softplus(STD))
    # d log q(w) / d loc = (w - loc) / std^2; d / d std = -1/std + (w - loc)^2 / std^3
    exp_loc = (cost - 4.0) * (w - LOC) / STD**2 + k_loc
    exp_std = ((cost - 4.0) * (-1 / STD + (w - LOC) ** 2 / STD**3) + k_std) * sig
    np.testing.assert_allclose(posterior.loc().grad.asnumpy(), exp_loc, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(posterior.raw_scale().grad.asnumpy(), exp_std, rtol=1e-4,
                               atol=1e-5)
    assert baseline.value == pytest.approx(4.0 - 0.5 * (4.0 - cost), rel=1e-5)


# ------------------------------------------------------------------ unbiased over many draws
@pytest.mark.parametrize("prior_name", PRIORS)
@pytest.mark.parametrize("estimator_name", ESTIMATORS)
def test_gradient_mean_matches_exact_elbo_gradient(estimator_name, prior_name, seed):
    prior = PRIORS[prior_name]()
    n_calls, n_draws = (60, 20) if estimator_name == "reparam" else (150, 40)
    grads = _grads(ESTIMATORS[estimator_name](), Quadratic(3), _posterior(), prior,
                   one_part(C, A), np.random.default_rng(seed), n_calls, n_draws)
    exact = np.concatenate(_exact_surrogate_grads(prior))
    mean, se = grads.mean(axis=0), grads.std(axis=0, ddof=1) / math.sqrt(n_calls)
    assert np.all(np.abs(mean - exact) < 4.5 * se + 1e-4), (mean, exact, se)


def test_local_reparam_gradient_mean_matches_closed_form(linear_data, seed):
    X, y = linear_data
    model = LinearGaussian(2, noise_std=0.5)
    loc, std = np.array([0.6, -0.2]), np.array([0.2, 0.4])
    prior = GaussianPrior(1.0)
    grads = _grads(ReparamEstimator(local=True), model, _posterior(loc, std), prior,
                   one_part(X, y), np.random.default_rng(seed), 60, 20, data_scale=1.0)
    _, d_loc, d_std = model.expected(X.astype(np.float64), y.astype(np.float64), loc, std)
    k_loc, k_std = loc, -1.0 / std + std
    exact = np.concatenate([-(d_loc - k_loc),
                            -(d_std - k_std) * _sigmoid(inverse_softplus(std))])
    mean, se = grads.mean(axis=0), grads.std(axis=0, ddof=1) / math.sqrt(60)
    assert np.all(np.abs(mean - exact) < 4.5 * se + 1e-3), (mean, exact, se)


# ------------------------------------------------------------------ variances
def test_reparam_has_lower_variance_than_score_function(seed):
    prior = GaussianPrior(PRIOR_SCALE)
    variances = {}
    for name, make in ESTIMATORS.items():
        estimator = make()
        rng = np.random.default_rng(seed)
        posterior = _posterior()
        _grads(estimator, Quadratic(3), posterior, prior, one_part(C, A), rng, 30)  # warm-up
        grads = _grads(estimator, Quadratic(3), posterior, prior, one_part(C, A), rng, 400)
        variances[name] = grads.var(axis=0, ddof=1)
    # every coordinate (3 means, 3 raw scales), by a wide margin
    assert np.all(variances["reparam"] * 3 < variances["score"]), variances


def test_baseline_lowers_score_function_variance(seed):
    prior = GaussianPrior(PRIOR_SCALE)
    model = Quadratic(3, offset=20.0)  # a large mean cost: what a baseline is for
    variances = {}
    for name, baseline in (("none", False), ("baseline", True)):
        estimator = ScoreFunctionEstimator(baseline=baseline)
        rng = np.random.default_rng(seed)
        _grads(estimator, model, _posterior(), prior, one_part(C, A), rng, 50)  # warm-up
        variances[name] = _grads(estimator, model, _posterior(), prior, one_part(C, A), rng,
                                 400).var(axis=0, ddof=1)
    assert np.all(variances["baseline"] * 3 < variances["none"]), variances


def test_local_reparam_lowers_variance(linear_data, seed):
    X, y = linear_data
    model = LinearGaussian(2, noise_std=0.5)
    loc, std = np.array([0.6, -0.2]), np.array([0.2, 0.4])
    variances = {}
    for local in (False, True):
        grads = _grads(ReparamEstimator(local=local), model, _posterior(loc, std),
                       GaussianPrior(1.0), one_part(X, y), np.random.default_rng(seed), 300,
                       data_scale=1.0)
        variances[local] = grads.var(axis=0, ddof=1)
    assert np.all(variances[True] < variances[False]), variances


# ------------------------------------------------------------------ pieces and errors
def test_baseline_is_an_average_trained_by_its_own_loss():
    baseline = Baseline(0.25)
    assert baseline.value == 0.0
    baseline.update(8.0)
    assert baseline.value == 8.0  # first update sets it
    assert baseline.loss(4.0) == 8.0  # (8 - 4)^2 / 2
    baseline.update(4.0)  # one gradient step on that loss: 8 - 0.25 * (8 - 4)
    assert baseline.value == 7.0


@pytest.mark.parametrize("rate", [0.0, 1.5, True, "fast"])
def test_baseline_rate_error(rate):
    with pytest.raises(InvalidParameterError, match=r"learning_rate must be in \(0, 1\]"):
        Baseline(rate)


def test_score_estimator_baseline_error():
    with pytest.raises(InvalidParameterError, match="baseline must be True, False or a"):
        ScoreFunctionEstimator(baseline="ema")


def test_parts_on_wrong_context_error():
    posterior = MeanFieldNormal(np.zeros(3), 0.0, contexts=[mx.cpu(0)])
    parts = [(mx.cpu(1), mx.nd.array(C), mx.nd.array(A))]
    with pytest.raises(InvalidParameterError, match=r"first part .* is on cpu\(1\).*split_"
                                                    r"batch"):
        ReparamEstimator().estimate(Quadratic(3), posterior, GaussianPrior(), parts, 1.0,
                                    np.random.default_rng(0))


def test_parts_length_mismatch_error():
    posterior = MeanFieldNormal(np.zeros(3), 0.0)
    parts = [(mx.cpu(0), mx.nd.array(C), mx.nd.array(A[:2]))]
    with pytest.raises(InvalidParameterError, match="3 inputs but 2 targets"):
        ReparamEstimator().estimate(Quadratic(3), posterior, GaussianPrior(), parts, 1.0,
                                    np.random.default_rng(0))


@pytest.mark.parametrize("n_draws", [0, 1.5, True])
def test_n_draws_error(n_draws):
    with pytest.raises(InvalidParameterError, match="n_draws must be an integer >= 1"):
        ScoreFunctionEstimator().estimate(Quadratic(3), _posterior(), GaussianPrior(),
                                          one_part(C, A), 1.0, np.random.default_rng(0),
                                          n_draws)
