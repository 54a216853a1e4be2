"""The surrogate's kernel for spaces with categorical parameters (issue 14): ordinal +
categorical + their product. Its predictions are GPy's for the same kernel, its gradients
are the finite differences', what is learned about the ordinal columns on one category
carries over to another, and the optimiser's setting is validated, journalled and off for
journals written before it existed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from repurpose.bo import BayesianOptimizer, Categorical, GPSurrogate, Real, SearchSpace
from repurpose._gpy import import_gpy, quiet_gpy
from repurpose.bo import _mixed_gp
from repurpose.exceptions import InvalidParameterError


def _one_hot_rows(rng, n, n_real, n_choices):
    X = np.zeros((n, n_real + n_choices))
    X[:, :n_real] = rng.random((n, n_real))
    X[np.arange(n), n_real + rng.integers(0, n_choices, n)] = 1.0
    return X


def _data(seed=0, n=25):
    rng = np.random.default_rng(seed)
    X = _one_hot_rows(rng, n, 2, 3)
    y = np.sin(5 * X[:, 0]) + X[:, 1] + X[:, 2:] @ np.array([0.0, 0.7, -0.4])
    return X, y, rng


def _gpy_twin(gp, y):
    """GPy's GP with the same kernel (sum and product of GPy kernels) and hyper-parameters."""
    GPy = import_gpy()
    k = gp.model_
    o, c = k.ordinal, k.categorical
    with quiet_gpy():
        return _gpy_model(GPy, k, o, c, gp, y)


def _gpy_model(GPy, k, o, c, gp, y):
    # M(o) (a + s R'(c)) + b R(c) = a M(o) + (s M(o)) R'(c) + b R(c)
    parts = [GPy.kern.Matern52(len(o), k.get("a"), k.get("l_o"), ARD=True, active_dims=o),
             GPy.kern.Matern52(len(o), k.get("s"), k.get("l_o"), ARD=True, active_dims=o),
             GPy.kern.RBF(len(c), 1.0, k.get("l_cx"), ARD=True, active_dims=c),
             GPy.kern.RBF(len(c), k.get("b"), k.get("l_c"), ARD=True, active_dims=c)]
    kernel = parts[0] + parts[1] * parts[2] + parts[3]
    y_std = (y - gp.y_mean_) / gp.y_scale_
    return GPy.models.GPRegression(gp._X, y_std[:, None], kernel, noise_var=gp._noise)


def test_predictions_are_gpys_for_the_same_kernel():
    X, y, rng = _data()
    gp = GPSurrogate(seed=0, categorical_columns=[2, 3, 4]).fit(X, y)
    twin = _gpy_twin(gp, y)
    T = _one_hot_rows(rng, 9, 2, 3)
    mean, var = gp.predict(T)
    twin_mean, twin_var = twin.predict_noiseless(T)
    # (round-off: the noise is 1e-6 of the signal, K + noise I is ill-conditioned)
    assert np.allclose(mean, twin_mean[:, 0] * gp.y_scale_ + gp.y_mean_, atol=1e-5)
    assert np.allclose(var, twin_var[:, 0] * gp.y_scale_ ** 2, atol=1e-6)
    # and the fit interpolates noise-free data
    assert np.allclose(gp.predict(X)[0], y, atol=1e-2)


def test_input_gradients_match_finite_differences():
    X, y, rng = _data(1)
    gp = GPSurrogate(seed=0, categorical_columns=[2, 3, 4]).fit(X, y)
    T = _one_hot_rows(rng, 5, 2, 3)
    mean, var, dmean, dvar = gp.predict_with_gradient(T)
    h = 1e-6
    for j in range(X.shape[1]):
        step = np.zeros(X.shape[1])
        step[j] = h
        m2, v2 = gp.predict(T + step)
        assert np.allclose((m2 - mean) / h, dmean[:, j], atol=1e-4 * (1 + np.abs(dmean).max()))
        assert np.allclose((v2 - var) / h, dvar[:, j], atol=1e-4 * (1 + np.abs(dvar).max()))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10 ** 6))
def test_likelihood_gradient_matches_finite_differences(seed):
    X, y, rng = _data(seed % 97, n=12)
    kernel = _mixed_gp.MixedKernel([0, 1], [2, 3, 4])
    prior = import_gpy().priors.LogGaussian(-0.2, 1.7)
    params = np.append(rng.uniform(-1.5, 1.5, kernel.n_theta), np.log(rng.uniform(1e-3, 0.1)))
    y = (y - y.mean()) / y.std()

    def value(p):
        return _mixed_gp.negative_log_posterior(p, kernel, X, y, prior)[0]

    _, grad = _mixed_gp.negative_log_posterior(params, kernel, X, y, prior)
    numeric = approx_fprime(params, value, 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-3, atol=1e-3 * (1 + np.abs(numeric).max()))


def test_what_one_category_shows_carries_over_to_another():
    # f = (x - 0.3)^2 + offset[c]: 'a' is sampled across x, 'b' only at the two ends. The
    # mixed kernel puts b's predicted minimum near x = 0.3, as a's trials show; one Matern
    # kernel over the one-hot columns sees b's two points alone and cannot.
    xs_a = np.linspace(0.0, 1.0, 12)
    xs_b = np.array([0.0, 1.0])
    X = np.array([[x, 1.0, 0.0] for x in xs_a] + [[x, 0.0, 1.0] for x in xs_b])
    y = (X[:, 0] - 0.3) ** 2 + 0.2 * X[:, 2]
    grid = np.linspace(0.0, 1.0, 101)
    G = np.column_stack([grid, np.zeros_like(grid), np.ones_like(grid)])
    argmin = {}
    for name, columns in (("mixed", [1, 2]), ("plain", None)):
        gp = GPSurrogate(seed=0, categorical_columns=columns).fit(X, y)
        argmin[name] = grid[np.argmin(gp.predict(G)[0])]
    assert abs(argmin["mixed"] - 0.3) < 0.1
    assert abs(argmin["plain"] - 0.3) > 0.15


def test_categorical_columns_are_checked_and_degenerate_splits_use_one_kernel():
    X, y, _ = _data()
    with pytest.raises(InvalidParameterError, match="categorical_columns must be column"):
        GPSurrogate(categorical_columns=[2, 9]).fit(X, y)
    for columns in ([], list(range(5))):  # no categorical columns, or nothing else
        gp = GPSurrogate(seed=0, categorical_columns=columns).fit(X, y)
        plain = GPSurrogate(seed=0).fit(X, y)
        assert np.array_equal(gp.predict(X[:4])[0], plain.predict(X[:4])[0])


def test_set_data_keeps_the_hyper_parameters():
    # As the optimiser uses it: pending points told at the posterior mean (kriging believer)
    # leave the mean where it was and shrink the variance at them.
    X, y, rng = _data()
    gp = GPSurrogate(seed=0, categorical_columns=[2, 3, 4]).fit(X, y)
    theta = gp.model_.theta.copy()
    T, probe = _one_hot_rows(rng, 3, 2, 3), _one_hot_rows(rng, 20, 2, 3)
    before, var_at_T = gp.predict(probe)[0], gp.predict(T)[1]
    gp.set_data(np.vstack([X, T]), np.concatenate([y, gp.predict(T)[0]]))
    assert np.array_equal(gp.model_.theta, theta)
    assert np.allclose(gp.predict(probe)[0], before, atol=1e-4)
    assert np.all(gp.predict(T)[1] < 0.5 * var_at_T)


def test_mixed_kernel_setting_is_checked_journalled_and_off_for_older_journals():
    space = SearchSpace({"x": Real(0.0, 1.0), "c": Categorical(["a", "b"])})
    with pytest.raises(InvalidParameterError, match="mixed_kernel must be True or False"):
        BayesianOptimizer(space, mixed_kernel=1)
    opt = BayesianOptimizer(space, seed=0)
    assert opt.settings()["mixed_kernel"] is True
    state = opt.get_state()
    del state["settings"]["mixed_kernel"]  # as written before the setting existed
    assert BayesianOptimizer.from_state(state).mixed_kernel is False


def _suggestions(space, objective, **settings):
    opt = BayesianOptimizer(space, seed=3, n_initial=5, **settings)
    for _ in range(9):
        p = opt.ask()
        opt.tell(p, objective(p))
    return opt.ask()


def test_the_setting_changes_mixed_spaces_only():
    real = SearchSpace({"x": Real(0.0, 1.0), "y": Real(0.0, 1.0)})
    f = lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2  # noqa: E731
    assert _suggestions(real, f) == _suggestions(real, f, mixed_kernel=False)
    mixed = SearchSpace({"x": Real(0.0, 1.0), "c": Categorical(["a", "b", "c"])})
    g = lambda p: (p["x"] - 0.3) ** 2 + {"a": 0.3, "b": 0.0, "c": 0.5}[p["c"]]  # noqa: E731
    assert _suggestions(mixed, g) != _suggestions(mixed, g, mixed_kernel=False)
