"""The Bayesian MLP: weight layout, forward passes against numpy, local reparameterisation
against weight sampling, batched prediction draws."""
import math

import mxnet as mx
import numpy as np
import pytest

from repurpose.bayes import BayesianMLP, sample_mean_field
from repurpose.bayes.posterior import inverse_softplus
from repurpose.exceptions import InvalidParameterError

SIZES = (5, 7, 3)


def _numpy_logits(net, x, w):
    h = x
    layers = net.unflatten(w)
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight.T + bias
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return h


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    net = BayesianMLP(SIZES)
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, 6).astype(np.float64)
    loc = net.init_loc(rng, dtype=np.float64)
    std = rng.uniform(0.05, 0.3, net.n_params)
    return net, x, y, loc, std


def test_layout_round_trip(setup):
    net, _, _, loc, _ = setup
    assert net.n_params == 7 * 5 + 7 + 3 * 7 + 3
    layers = net.unflatten(loc)
    assert [w.shape for w, _ in layers] == [(7, 5), (3, 7)]
    np.testing.assert_array_equal(net.flatten(layers), loc)
    scales = net.unflatten(net.prior_scales(2.0))
    np.testing.assert_allclose(scales[0][0], 2.0 / math.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(scales[1][0], 2.0 / math.sqrt(7), rtol=1e-6)
    np.testing.assert_allclose(scales[1][1], 2.0)


def test_logits_and_log_likelihood_match_numpy(setup):
    net, x, y, loc, _ = setup
    nd = lambda a: mx.nd.array(a, dtype=np.float64)  # noqa: E731
    logits = _numpy_logits(net, x, loc)
    np.testing.assert_allclose(net.logits(mx.nd, nd(x), nd(loc)).asnumpy(), logits, rtol=1e-10)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = log_softmax[np.arange(6), y.astype(int)].sum()
    assert net.log_likelihood(mx.nd, nd(x), nd(y), nd(loc)).asscalar() == pytest.approx(expected)


def test_logits_draws_match_one_draw_at_a_time(setup):
    net, x, _, loc, std = setup
    w = sample_mean_field(loc, inverse_softplus(std), 4, np.random.default_rng(1))
    batched = net.logits_draws(mx.nd, mx.nd.array(x, dtype=np.float64),
                               mx.nd.array(w, dtype=np.float64), 4).asnumpy()
    assert batched.shape == (4, 6, 3)
    for s in range(4):
        np.testing.assert_allclose(batched[s], _numpy_logits(net, x, w[s]), rtol=1e-10)


@pytest.mark.parametrize("n_draws", [1, 50])
def test_local_reparam_has_the_expectation_of_weight_sampling(setup, n_draws):
    # Both are unbiased for E_q[log p(y | x, w)]: local reparameterisation samples each
    # row's pre-activations from their exact Gaussian instead of sampling weights.
    net, x, y, loc, std = setup
    rng = np.random.default_rng(2)
    nd = lambda a: mx.nd.array(a, dtype=np.float64)  # noqa: E731
    reps = 50 // n_draws  # 50 independent draws per call: rows repeated, or n_draws
    xs, ys = nd(np.tile(x, (reps, 1))), nd(np.tile(y, reps))
    local = [net.log_likelihood_local(
        mx.nd, xs, ys, nd(loc), nd(std),
        nd(rng.standard_normal((6 * reps, net.local_noise_size(n_draws)))), n_draws
    ).asscalar() / reps for _ in range(40)]
    w = sample_mean_field(loc, inverse_softplus(std), 2000, rng)
    logits = net.logits_draws(mx.nd, nd(x), nd(w), 2000).asnumpy()
    log_softmax = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    weights = log_softmax[:, np.arange(6), y.astype(int)].sum(axis=1)
    se = math.hypot(np.std(local) / math.sqrt(40), np.std(weights) / math.sqrt(2000))
    assert abs(np.mean(local) - np.mean(weights)) < 4 * se
    assert se < 0.05 * abs(np.mean(weights))  # a test with teeth


def test_local_reparam_samples_the_exact_pre_activation_gaussian():
    # With no hidden layer the sampled logits are a = m + sd * eps with
    # m = x loc_W^T + loc_b and sd^2 = x^2 (std_W^2)^T + std_b^2, row by row.
    rng = np.random.default_rng(3)
    net = BayesianMLP((5, 3))
    x = rng.standard_normal((2, 5))
    loc, std = net.init_loc(rng, np.float64), rng.uniform(0.1, 0.5, net.n_params)
    [(w_loc, b_loc)], [(w_std, b_std)] = net.unflatten(loc), net.unflatten(std)
    mean = x @ w_loc.T + b_loc
    sd = np.sqrt((x**2) @ (w_std**2).T + b_std**2)
    eps = rng.standard_normal((2, 3))
    for k in range(3):  # every label, at the same noise
        y = np.full(2, float(k))
        got = net.log_likelihood_local(mx.nd, mx.nd.array(x, dtype=np.float64),
                                       mx.nd.array(y, dtype=np.float64),
                                       mx.nd.array(loc, dtype=np.float64),
                                       mx.nd.array(std, dtype=np.float64),
                                       mx.nd.array(eps, dtype=np.float64), 1).asscalar()
        a = mean + sd * eps
        expected = (a[:, k] - np.log(np.exp(a).sum(axis=1))).sum()
        assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("sizes, activation", [((3, 2), "relu"), ((3, 4, 4, 2), "tanh")])
def test_network_ok(sizes, activation):
    assert BayesianMLP(sizes, activation).layer_sizes == sizes


@pytest.mark.parametrize("sizes, activation, match", [
    ((3,), "relu", "needs at least the input and output sizes"),
    ((3, 0, 2), "relu", r"layer_sizes\[1\] must be an integer >= 1, got 0"),
    ((3, 2), "gelu", "activation must be one of 'relu'"),
])
def test_network_error(sizes, activation, match):
    with pytest.raises(InvalidParameterError, match=match):
        BayesianMLP(sizes, activation)
