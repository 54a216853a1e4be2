"""Priors: densities against scipy, analytic KL against Monte Carlo, the Laplace KL estimate
against its closed form, and bad scales."""
import math

import mxnet as mx
import numpy as np
import pytest
from scipy import special, stats

from repurpose.bayes import GaussianPrior, LaplacePrior, MeanFieldNormal, make_prior
from repurpose.exceptions import CapabilityError, InvalidParameterError

LOC = np.array([0.0, 0.7, -1.5, 2.0])
STD = np.array([1.0, 0.3, 0.5, 1.2])


def _nd(a):
    return mx.nd.array(a, dtype=np.float64)


def _mc_kl(prior, n_draws, seed):
    """Per-weight Monte-Carlo KL(q || p): mean and standard error over n_draws draws."""
    rng = np.random.default_rng(seed)
    w = LOC + STD * rng.standard_normal((n_draws, LOC.size))
    loc, std = _nd(np.broadcast_to(LOC, w.shape)), _nd(np.broadcast_to(STD, w.shape))
    terms = (MeanFieldNormal.log_prob(mx.nd, _nd(w), loc, std)
             - prior.log_prob(mx.nd, _nd(w))).asnumpy()
    return terms.mean(axis=0), terms.std(axis=0) / math.sqrt(n_draws)


@pytest.mark.parametrize("prior, reference", [
    (GaussianPrior(0.8), stats.norm(0, 0.8)),
    (LaplacePrior(0.8), stats.laplace(0, 0.8)),
])
def test_log_prob_matches_scipy(prior, reference):
    w = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(prior.log_prob(mx.nd, _nd(w)).asnumpy(), reference.logpdf(w),
                               rtol=1e-12, atol=1e-12)


def test_log_prob_with_array_scale_matches_scalar_scales():
    scale = np.array([0.5, 1.0, 2.0])
    w = np.array([0.3, -1.0, 4.0])
    got = GaussianPrior(scale).log_prob(mx.nd, mx.nd.array(w)).asnumpy()
    np.testing.assert_allclose(got, stats.norm(0, scale).logpdf(w), rtol=1e-5)


def test_gaussian_analytic_kl_matches_monte_carlo(seed):
    prior = GaussianPrior(0.8)
    analytic = prior.kl_normal(mx.nd, _nd(LOC), _nd(STD)).asnumpy()
    mean, se = _mc_kl(prior, 200_000, seed)
    assert np.all(np.abs(mean - analytic) < 4 * se + 1e-9), (mean, analytic, se)
    # and against the textbook formula
    expected = np.log(0.8 / STD) + (STD**2 + LOC**2) / (2 * 0.8**2) - 0.5
    np.testing.assert_allclose(analytic, expected, rtol=1e-12)


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    prior = GaussianPrior(1.5)
    assert prior.kl_normal(mx.nd, _nd([0.0]), _nd([1.5])).asscalar() == pytest.approx(0, abs=1e-12)
    assert (prior.kl_normal(mx.nd, _nd(LOC), _nd(STD)).asnumpy() > 0).all()


def test_laplace_monte_carlo_kl_matches_closed_form(seed):
    b = 0.8
    # KL(N(m, s^2) || Laplace(0, b)) = -H[q] + log(2b) + E|w| / b, with the folded-normal mean
    # E|w| = s sqrt(2/pi) exp(-m^2 / 2s^2) + m erf(m / (s sqrt 2)).
    abs_mean = STD * math.sqrt(2 / math.pi) * np.exp(-LOC**2 / (2 * STD**2)) \
        + LOC * special.erf(LOC / (STD * math.sqrt(2)))
    closed = -0.5 * np.log(2 * math.pi * math.e * STD**2) + math.log(2 * b) + abs_mean / b
    mean, se = _mc_kl(LaplacePrior(b), 200_000, seed)
    assert np.all(np.abs(mean - closed) < 4 * se), (mean, closed, se)


def test_laplace_has_no_analytic_kl_error():
    assert not LaplacePrior().has_analytic_kl
    with pytest.raises(CapabilityError, match="Monte-Carlo"):
        LaplacePrior().kl_normal(mx.nd, _nd(LOC), _nd(STD))


def test_make_prior_ok():
    assert isinstance(make_prior("gaussian", 2.0), GaussianPrior)
    assert make_prior("laplace", 0.5).scale == 0.5


def test_make_prior_error():
    with pytest.raises(InvalidParameterError, match=r"prior must be one of.*'laplace'.*Did you "
                                                    r"mean 'laplace'"):
        make_prior("laplac")


@pytest.mark.parametrize("scale", [1, 0.1, np.array([0.5, 2.0])])
def test_scale_ok(scale):
    prior = GaussianPrior(scale)
    assert prior.scale_array(2).shape == (2,)


@pytest.mark.parametrize("scale, match", [
    (0.0, "positive finite number, got 0.0"),
    (-1.0, "positive finite number, got -1.0"),
    (float("inf"), "positive finite number"),
    (True, "positive number, got True"),
    (np.array([1.0, -2.0]), r"bad ones: -2.0"),
    ("wide", "positive number or an array"),
])
def test_scale_error(scale, match):
    with pytest.raises(InvalidParameterError, match=match):
        LaplacePrior(scale)


def test_scale_array_length_error():
    with pytest.raises(InvalidParameterError, match="has 3 scales but the posterior has 5"):
        GaussianPrior(np.ones(3)).scale_array(5)


@pytest.mark.parametrize("prior", [GaussianPrior(np.array([0.5, 1.0, 2.0, 0.7])),
                                   LaplacePrior(np.array([0.5, 1.0, 2.0, 0.7])),
                                   GaussianPrior(0.8), LaplacePrior(0.8)],
                         ids=["gauss-array", "lap-array", "gauss", "lap"])
def test_summed_graph_forms_equal_elementwise_sums(prior):
    w = np.array([0.3, -1.2, 2.5, 0.0])
    inputs = [_nd(a) for a in prior.graph_inputs(4)]
    expected = prior.log_prob(mx.nd, _nd(w), _nd(prior.scale_array(4))).asnumpy().sum()
    assert prior.log_prob_sum(mx.nd, _nd(w), *inputs).asscalar() == pytest.approx(expected,
                                                                                rel=1e-6)
    if prior.has_analytic_kl:
        kl = prior.kl_normal(mx.nd, _nd(LOC), _nd(STD), _nd(prior.scale_array(4))).asnumpy()
        assert prior.kl_normal_sum(mx.nd, _nd(LOC), _nd(STD), *inputs).asscalar() == \
            pytest.approx(kl.sum(), rel=1e-6)
    # and inside a hybridized graph (the estimators' block), where the inputs are symbols
    from repurpose.bayes.estimators import _GraphBlock

    block = _GraphBlock(lambda F, w, *inputs: prior.log_prob_sum(F, w, *inputs))
    block.hybridize()
    assert block(_nd(w), *inputs).asscalar() == pytest.approx(expected, rel=1e-6)
