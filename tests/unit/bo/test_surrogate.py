"""The GP surrogate interpolates noiseless data and is seeded."""
import numpy as np
import pytest

from repurpose.bo import GPSurrogate
from repurpose.exceptions import DataError, InvalidParameterError, NotFittedError


def test_gp_interpolates_noiseless_data():
    rng = np.random.default_rng(0)
    X = rng.random((15, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    gp = GPSurrogate(seed=0).fit(X, y)
    mean, var = gp.predict(X)
    np.testing.assert_allclose(mean, y, atol=1e-2 * np.ptp(y))
    assert np.all(var < 1e-3 * np.var(y))
    far_mean, far_var = gp.predict(np.array([[3.0, 3.0]]))
    assert far_var[0] > 100 * var.max()


def test_gp_is_deterministic_given_seed():
    rng = np.random.default_rng(1)
    X, y = rng.random((10, 3)), rng.normal(size=10)
    a = GPSurrogate(n_restarts=3, seed=5).fit(X, y).predict(X[:3])
    b = GPSurrogate(n_restarts=3, seed=5).fit(X, y).predict(X[:3])
    np.testing.assert_array_equal(a[0], b[0])


def test_gp_predict_before_fit_error():
    with pytest.raises(NotFittedError, match="not fitted"):
        GPSurrogate().predict(np.zeros((1, 1)))


def test_gp_fit_nan_error():
    with pytest.raises(DataError, match="NaN or inf"):
        GPSurrogate().fit(np.zeros((2, 1)), [0.0, np.nan])


def _fitted(seed=0, n=30, d=4):
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return GPSurrogate(seed=0).fit(X, np.sin(3 * X).sum(1) + 0.1 * X[:, 0]), rng


def test_numpy_prediction_matches_gpy():
    from repurpose._gpy import quiet_gpy

    gp, rng = _fitted()
    X = rng.random((64, 4))
    mean, var = gp.predict(X)
    with quiet_gpy():
        gpy_mean, gpy_var = gp.model_.predict_noiseless(X)
    np.testing.assert_allclose(mean, gpy_mean[:, 0] * gp.y_scale_ + gp.y_mean_, atol=1e-8)
    np.testing.assert_allclose(var, np.maximum(gpy_var[:, 0], 1e-12) * gp.y_scale_ ** 2,
                               atol=1e-7)
    grad_mean, grad_var = gp.predict_with_gradient(X)[:2]
    np.testing.assert_allclose(grad_mean, mean, atol=1e-8)
    np.testing.assert_allclose(grad_var, var, atol=1e-6)


def test_prediction_gradients_match_finite_differences():
    gp, rng = _fitted(1)
    X = rng.random((6, 4))
    _, _, dmean, dvar = gp.predict_with_gradient(X)
    h = 1e-4
    for j in range(4):
        up, down = X.copy(), X.copy()
        up[:, j] += h
        down[:, j] -= h
        (m_up, v_up), (m_down, v_down) = gp.predict(up), gp.predict(down)
        np.testing.assert_allclose(dmean[:, j], (m_up - m_down) / (2 * h), rtol=1e-4,
                                   atol=1e-6)
        np.testing.assert_allclose(dvar[:, j], (v_up - v_down) / (2 * h), rtol=1e-3,
                                   atol=1e-3 * np.abs(dvar).max())


def test_set_data_updates_prediction():
    gp, rng = _fitted(2)
    X = np.vstack([gp.model_.X, [[0.5, 0.5, 0.5, 0.5]]])
    y = np.concatenate([np.asarray(gp.model_.Y)[:, 0] * gp.y_scale_ + gp.y_mean_, [-7.0]])
    gp.set_data(X, y)
    mean, var = gp.predict([[0.5, 0.5, 0.5, 0.5]])
    assert abs(mean[0] + 7.0) < 1e-2 and var[0] < 1e-3


@pytest.mark.parametrize("prior", ["dimension-scaled", (3.0, 6.0), None])
def test_lengthscale_priors_fit(prior):
    rng = np.random.default_rng(3)
    X = rng.random((12, 3))
    gp = GPSurrogate(seed=0, lengthscale_prior=prior).fit(X, X[:, 0] ** 2)
    assert np.all(np.isfinite(gp.predict(X)[0]))


def test_dimension_scaled_prior_median_grows_with_sqrt_d():
    from repurpose._gpy import import_gpy

    GPy = import_gpy()
    gp = GPSurrogate()
    p2, p8 = gp._lengthscale_prior(GPy, 2), gp._lengthscale_prior(GPy, 8)
    assert np.isclose(np.exp(p8.mu) / np.exp(p2.mu), 2.0)


@pytest.mark.parametrize("prior", ["wide", (0.0, 1.0), (1.0,), "x"])
def test_bad_lengthscale_prior_error(prior):
    with pytest.raises(InvalidParameterError, match="lengthscale_prior"):
        GPSurrogate(lengthscale_prior=prior).fit(np.eye(3), [0.0, 1.0, 2.0])
