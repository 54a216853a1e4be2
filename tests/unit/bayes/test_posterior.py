"""Mean-field posterior: softplus scales, densities against scipy, replicas and their summed
gradients, sampling."""
import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mxnet import autograd
from scipy import stats

from repurpose.bayes import MeanFieldNormal, inverse_softplus, sample_mean_field, softplus
from repurpose.exceptions import InvalidParameterError


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e3))
def test_inverse_softplus_inverts_softplus(y):
    assert softplus(inverse_softplus(y)) == pytest.approx(y, rel=1e-9)


def test_log_prob_and_entropy_match_scipy():
    w, loc, std = np.array([0.3, -2.0, 5.0]), np.array([0.0, -1.0, 4.0]), np.array([1.0, 0.5, 2.0])
    nd = lambda a: mx.nd.array(a, dtype=np.float64)  # noqa: E731
    np.testing.assert_allclose(MeanFieldNormal.log_prob(mx.nd, nd(w), nd(loc), nd(std)).asnumpy(),
                               stats.norm(loc, std).logpdf(w), rtol=1e-12)
    np.testing.assert_allclose(MeanFieldNormal.entropy(mx.nd, nd(std)).asnumpy(),
                               stats.norm(loc, std).entropy(), rtol=1e-12)
    raw = inverse_softplus(std)
    np.testing.assert_allclose(MeanFieldNormal.std(mx.nd, nd(raw)).asnumpy(), std, rtol=1e-12)


def test_from_init_sets_every_std():
    q = MeanFieldNormal.from_init(np.arange(4.0), init_scale=1e-3)
    np.testing.assert_allclose(q.std_numpy(), 1e-3, rtol=1e-4)
    np.testing.assert_array_equal(q.to_numpy()[0], np.arange(4.0))
    assert q.n_params == 4 and q.contexts == [mx.cpu()]


def test_replicas_broadcast_and_sum_gradients():
    contexts = [mx.cpu(0), mx.cpu(1), mx.cpu(2)]
    q = MeanFieldNormal(np.zeros(2), 0.0, contexts)
    q.loc()[:] = mx.nd.array([1.0, 2.0])
    q.broadcast()
    for ctx in contexts:
        np.testing.assert_array_equal(q.loc(ctx).asnumpy(), [1.0, 2.0])
    with autograd.record():
        losses = [(k + 1.0) * mx.nd.sum(q.loc(ctx) * q.raw_scale(ctx) + q.loc(ctx))
                  for k, ctx in enumerate(contexts)]
    autograd.backward(losses)
    d_loc, d_raw = q.gradients(contexts)
    np.testing.assert_allclose(d_loc.asnumpy(), 6.0 * (0.0 + 1.0))  # (1+2+3) * (raw + 1)
    np.testing.assert_allclose(d_raw.asnumpy(), 6.0 * np.array([1.0, 2.0]))
    assert d_loc.context == mx.cpu(0)
    # only the contexts named are summed
    np.testing.assert_allclose(q.gradients(contexts[:2])[0].asnumpy(), 3.0)


def test_sample_moments():
    loc, raw = np.array([1.0, -2.0]), inverse_softplus(np.array([0.5, 0.1]))
    draws = sample_mean_field(loc, raw, 20_000, np.random.default_rng(0))
    assert draws.shape == (20_000, 2)
    np.testing.assert_allclose(draws.mean(axis=0), loc, atol=0.02)
    np.testing.assert_allclose(draws.std(axis=0), [0.5, 0.1], rtol=0.03)
    q = MeanFieldNormal(loc, raw)
    np.testing.assert_allclose(q.sample_numpy(3, np.random.default_rng(1)),
                               sample_mean_field(q.to_numpy()[0], q.to_numpy()[1], 3,
                                                 np.random.default_rng(1)))


@pytest.mark.parametrize("scale", [0.5, 1e-4])
def test_init_scale_ok(scale):
    MeanFieldNormal.from_init(np.zeros(2), scale)


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), True, "small"])
def test_init_scale_error(scale):
    with pytest.raises(InvalidParameterError, match="init_scale must be a positive finite"):
        MeanFieldNormal.from_init(np.zeros(2), scale)


def test_non_finite_loc_error():
    with pytest.raises(InvalidParameterError, match="non-finite initial loc"):
        MeanFieldNormal(np.array([0.0, np.nan]), 0.0)


def test_unknown_context_error():
    q = MeanFieldNormal(np.zeros(2), 0.0, [mx.cpu(0)])
    with pytest.raises(InvalidParameterError, match=r"lives on \[cpu\(0\)\], not on cpu\(3\)"):
        q.loc(mx.cpu(3))
