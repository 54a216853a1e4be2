"""The GP surrogate interpolates noiseless data and is seeded."""
import numpy as np
import pytest

from repurpose.bo import GPSurrogate
from repurpose.exceptions import DataError, NotFittedError


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
