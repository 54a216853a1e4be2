"""GpHead: Dirichlet-based GP classification on a sparse GP with GPy kernels."""
import json

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_blobs, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from repurpose.exceptions import InvalidParameterError
from repurpose._gpy import import_gpy, quiet_gpy
from repurpose.heads._gp import GpHead
from repurpose.heads._gp_bound import (_Bound, _latent_posterior, _mc_softmax,
                                       dirichlet_prior_mean, dirichlet_targets)
from repurpose.heads._gp_kernel import _loo_log_loss, _make_kernel, _model_class
from repurpose.persist import load, registered_class, save


# ---------------------------------------------------------------------- helpers
def expected_calibration_error(proba, y, n_bins=10):
    """Equal-width-bin ECE of the top-class confidence (a deliberately simple version)."""
    confidence, correct = proba.max(axis=1), proba.argmax(axis=1) == y
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return sum(abs(correct[bins == b].mean() - confidence[bins == b].mean())
               * np.mean(bins == b) for b in np.unique(bins))


def log_loss(proba, y):
    return -np.mean(np.log(np.maximum(proba[np.arange(len(y)), y], 1e-300)))


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(150, centers=3, cluster_std=1.0, n_features=4, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs):
    X, y = blobs
    return GpHead(n_inducing=30, max_iter=50, random_state=0).fit(X, y)


def random_problem(seed, n=40, d=3, n_classes=3):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), np.arange(n) % n_classes


# ---------------------------------------------------------------------- closed forms
def test_dirichlet_targets_match_the_lognormal_moments():
    y_tilde, noise_var = dirichlet_targets(np.array([2, 0]), 3, 0.01)
    # alpha = 1.01 on the label's class, 0.01 elsewhere.
    s_hi, s_lo = np.log(1 / 1.01 + 1), np.log(1 / 0.01 + 1)
    np.testing.assert_allclose(noise_var, [[s_lo, s_lo, s_hi], [s_hi, s_lo, s_lo]])
    np.testing.assert_allclose(y_tilde[0], [np.log(0.01) - s_lo / 2] * 2
                               + [np.log(1.01) - s_hi / 2])
    # The log-normal matches the Gamma(alpha, 1) mean: E[exp(y)] = alpha.
    np.testing.assert_allclose(np.exp(y_tilde + noise_var / 2), [[.01, .01, 1.01],
                                                                 [1.01, .01, .01]])


def test_prior_mean_returns_class_frequencies_far_from_data():
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    mean = dirichlet_prior_mean(y, 3, 0.01)
    np.testing.assert_allclose(np.exp(mean) / np.exp(mean).sum(), [0.6, 0.3, 0.1])


def test_bound_and_gradients_equal_gpy_heteroscedastic_sparse_gp_per_class():
    """The joint bound is the sum over classes of GPy's VarDTC with per-point noise."""
    GPy = import_gpy()
    X, y = random_problem(0, n=50, d=5)
    Z = X[:8] + 0.1
    mean = dirichlet_prior_mean(y, 3, 0.05)
    with quiet_gpy():
        model = _model_class()(_make_kernel("rbf", (3, 2), [1.3, 0.7], [1.5, 2.0]),
                               X, Z, y, mean, 0.05)
        y_tilde, noise_var = dirichlet_targets(y, 3, 0.05)
        total, grad = 0.0, 0.0
        for c in range(3):
            kern = _make_kernel("rbf", (3, 2), [1.3, 0.7], [1.5, 2.0])
            meta = {"output_index": np.arange(len(X))[:, None]}
            likelihood = GPy.likelihoods.HeteroscedasticGaussian(meta)
            likelihood.variance[:] = noise_var[:, c:c + 1]
            _, value, dL = GPy.inference.latent_function_inference.VarDTC().inference(
                kern, X, Z, likelihood, y_tilde[:, c:c + 1] - mean[c], Y_metadata=meta)
            kern.update_gradients_diag(dL["dL_dKdiag"], X)
            g = kern.gradient.copy()
            kern.update_gradients_full(dL["dL_dKnm"], X, Z)
            g += kern.gradient
            kern.update_gradients_full(dL["dL_dKmm"], Z)
            total, grad = total + value, grad + g + kern.gradient
    # GPy adds 1e-8 jitter to Kmm; we add none when Kmm is positive definite.
    np.testing.assert_allclose(model.log_likelihood(), total, rtol=1e-8)
    np.testing.assert_allclose(model.kern.gradient, grad, rtol=1e-6)


def test_bound_uses_the_per_point_noise():
    """A homoscedastic noise (the mean of the two levels) gives a different bound."""
    X, y = random_problem(1, n=30)
    kern = _make_kernel("rbf", (3,), [2.0], [1.5])
    with quiet_gpy():
        Kmm, Knm, Kdiag = kern.K(X[:6]), kern.K(X, X[:6]), kern.Kdiag(X)
    mean = dirichlet_prior_mean(y, 3, 0.01)
    het = _Bound(Kmm, Knm, Kdiag, y, mean, 0.01, gradients=False).value
    # Dense reference: log N(y_c - m_c | 0, Q + diag(noise_c)) - trace term, per class,
    # with the bound's relative jitter on Kmm.
    y_tilde, noise_var = dirichlet_targets(y, 3, 0.01)
    Kmm = Kmm + 1e-8 * np.mean(np.diag(Kmm)) * np.eye(len(Kmm))
    Q = Knm @ np.linalg.solve(Kmm, Knm.T)
    ref = 0.0
    for c in range(3):
        cov = Q + np.diag(noise_var[:, c])
        r = y_tilde[:, c] - mean[c]
        ref += (-0.5 * len(y) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(cov)[1]
                - 0.5 * r @ np.linalg.solve(cov, r)
                - 0.5 * np.sum((Kdiag - np.diag(Q)) / noise_var[:, c]))
    np.testing.assert_allclose(het, ref, rtol=1e-9)
    flat = np.full_like(noise_var, noise_var.mean())
    homo = 0.0
    for c in range(3):
        cov = Q + np.diag(flat[:, c])
        r = y_tilde[:, c] - mean[c]
        homo += (-0.5 * len(y) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(cov)[1]
                 - 0.5 * r @ np.linalg.solve(cov, r)
                 - 0.5 * np.sum((Kdiag - np.diag(Q)) / flat[:, c]))
    assert abs(het - homo) > 1.0


def test_gradients_match_finite_differences():
    X, y = random_problem(2, n=40, d=4)
    with quiet_gpy():
        model = _model_class()(_make_kernel("matern52", (1, 3), [1.0, 2.0], [0.7, 1.9]),
                               X, X[:10], y, dirichlet_prior_mean(y, 3, 0.02), 0.02)
        assert model.checkgrad(tolerance=1e-4)


def test_exact_gp_when_every_sample_is_an_inducing_point():
    """With Z = X the sparse posterior is the exact heteroscedastic GP posterior."""
    X, y = random_problem(3, n=25)
    head = GpHead(n_inducing=25, alpha_eps=0.05, max_iter=0, random_state=0).fit(X, y)
    kern = _make_kernel("rbf", (3,), head.kernel_variance_, head.kernel_lengthscale_)
    Xs = (X - head.mean_) / head.scale_
    Xt = np.random.RandomState(4).randn(7, 3)
    Xts = (Xt - head.mean_) / head.scale_
    with quiet_gpy():
        K, Ks, kss = kern.K(Xs), kern.K(Xts, Xs), kern.Kdiag(Xts)
    y_tilde, noise_var = dirichlet_targets(y, 3, 0.05)
    mean, var = head.predict_latent(Xt)
    for c in range(3):
        cov = K + np.diag(noise_var[:, c])
        m = head.latent_mean_[c]
        np.testing.assert_allclose(mean[:, c], m + Ks @ np.linalg.solve(cov, y_tilde[:, c] - m),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(var[:, c],
                                   kss - np.sum(Ks * np.linalg.solve(cov, Ks.T).T, axis=1),
                                   rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------- fitting
def test_fits_blobs(blobs, fitted):
    X, y = blobs
    proba = fitted.predict_proba(X)
    assert fitted.score(X, y) > 0.9
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(fitted.predict(X), fitted.classes_[proba.argmax(axis=1)])
    assert fitted.alpha_eps_ in fitted.alpha_eps_log_loss_
    assert fitted.alpha_eps_log_loss_[fitted.alpha_eps_] == min(
        fitted.alpha_eps_log_loss_.values())


def test_fits_digits_accurately():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    head = GpHead(n_inducing=100, random_state=0).fit(Xtr, ytr)
    assert head.score(Xte, yte) > 0.95
    assert log_loss(head.predict_proba(Xte), yte) < 0.25


@pytest.mark.parametrize("labels", [np.array(["emu", "cat", "dog"]), np.array([42, 3, 7])],
                         ids=["strings", "non-contiguous-ints"])
def test_any_labels_and_columns_follow_classes(blobs, fitted, labels):
    X, y = blobs
    head = GpHead(n_inducing=30, max_iter=50, random_state=0).fit(X, labels[y])
    np.testing.assert_array_equal(head.classes_, np.sort(labels))
    assert np.mean(head.predict(X) == labels[y]) > 0.9
    # Column j of the relabelled head is the class classes_[j]: it matches the column of
    # the original label (up to the Monte-Carlo draws, which follow column order).
    order = [int(np.flatnonzero(labels == c)[0]) for c in head.classes_]
    np.testing.assert_allclose(head.predict_proba(X), fitted.predict_proba(X)[:, order],
                               atol=0.03)


def test_calibration_beats_squashed_one_hot_regression():
    """Noisy labels (20% resampled): lower log-loss than one-hot kernel ridge clipped and
    renormalised, and a small ECE; averaged over three seeded problems."""
    gp, squashed = [], []
    for seed in range(3):
        X, y = make_blobs(1200, centers=3, cluster_std=1.0, random_state=seed)
        rng = np.random.RandomState(seed)
        noisy = rng.rand(len(y)) < 0.2
        y[noisy] = rng.randint(3, size=noisy.sum())
        Xtr, ytr, Xte, yte = X[:400], y[:400], X[400:], y[400:]
        proba = GpHead(n_inducing=50, random_state=seed).fit(Xtr, ytr).predict_proba(Xte)
        gp.append((log_loss(proba, yte), expected_calibration_error(proba, yte)))
        scaler = StandardScaler().fit(Xtr)
        ridge = KernelRidge(alpha=1.0, kernel="rbf", gamma=0.5).fit(scaler.transform(Xtr),
                                                                     np.eye(3)[ytr])
        q = np.clip(ridge.predict(scaler.transform(Xte)), 1e-3, None)
        q /= q.sum(axis=1, keepdims=True)
        squashed.append((log_loss(q, yte), expected_calibration_error(q, yte)))
    (gp_nll, gp_ece), (sq_nll, sq_ece) = np.mean(gp, axis=0), np.mean(squashed, axis=0)
    assert gp_nll < sq_nll - 0.02          # measured: 0.546 vs 0.591
    assert gp_ece < 0.06                   # measured: 0.044 (squashed: 0.051)


def test_alpha_eps_auto_follows_label_noise():
    """Clean, separated classes get a small alpha_eps; flipped labels a larger one."""
    X, y = make_blobs(300, centers=3, cluster_std=0.5, random_state=1)
    clean = GpHead(n_inducing=30, random_state=0).fit(X, y)
    flipped = y.copy()
    rng = np.random.RandomState(0)
    idx = rng.choice(len(y), 90, replace=False)
    flipped[idx] = rng.randint(3, size=90)
    noisy = GpHead(n_inducing=30, random_state=0).fit(X, flipped)
    assert clean.alpha_eps_ < 0.01 < noisy.alpha_eps_


def test_leave_one_out_equals_refitting_without_each_point():
    """The closed-form leave-one-out log-loss equals n exact GPs fitted on n - 1 points."""
    X, y = random_problem(3, n=20)
    kern = _make_kernel("rbf", (3,), [2.0], [1.5])
    with quiet_gpy():
        K = kern.K(X)
    eps, z = 0.05, np.random.RandomState(0).standard_normal((50, 3))
    mean = dirichlet_prior_mean(y, 3, eps)
    loss = 0.0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        Kk = K[np.ix_(keep, keep)]
        bound = _Bound(Kk, Kk, np.diag(Kk), y[keep], mean, eps, gradients=False)
        mu, var = _latent_posterior(K[i:i + 1, keep], K[i, i:i + 1], bound.weights, mean,
                                    bound.chol_kmm, bound.chol_sigma)
        loss -= np.log(_mc_softmax(mu, var, z)[0, y[i]]) / len(y)
    np.testing.assert_allclose(_loo_log_loss(K, y, 3, eps, z), loss, rtol=1e-5)


def test_alpha_eps_auto_follows_label_noise_in_the_exact_gp():
    """With every sample an inducing point (leave-one-out selection) noise still shows."""
    X, y = make_blobs(150, centers=3, cluster_std=0.5, random_state=1)
    clean = GpHead(n_inducing=200, random_state=0).fit(X, y)
    flipped = y.copy()
    rng = np.random.RandomState(0)
    idx = rng.choice(len(y), 45, replace=False)
    flipped[idx] = rng.randint(3, size=45)
    noisy = GpHead(n_inducing=200, random_state=0).fit(X, flipped)
    assert clean.alpha_eps_ < 0.01 < noisy.alpha_eps_
    assert set(clean.alpha_eps_log_loss_) == set(noisy.alpha_eps_log_loss_)


def test_fixed_alpha_eps_is_used_as_given(blobs):
    X, y = blobs
    head = GpHead(n_inducing=20, alpha_eps=0.1, max_iter=30, random_state=0).fit(X, y)
    assert head.alpha_eps_ == 0.1 and head.alpha_eps_log_loss_ == {}


def test_variance_larger_far_from_training_data(blobs, fitted):
    X, _ = blobs
    far = X[:10] + 50.0
    near_var, far_var = fitted.predict_variance(X[:10]), fitted.predict_variance(far)
    assert np.all(far_var > 5 * near_var)
    # Far away the posterior is the prior: latent variance is the kernel variance and
    # the probabilities are the training class frequencies.
    _, var = fitted.predict_latent(far)
    np.testing.assert_allclose(var, fitted.kernel_variance_.sum(), rtol=1e-6)


def test_far_probabilities_are_class_frequencies():
    X, y = make_blobs([60, 30, 10], centers=[[0, 0], [3, 0], [0, 3]], random_state=0)
    head = GpHead(n_inducing=30, alpha_eps=0.01, max_iter=30, random_state=0).fit(X, y)
    mean, _ = head.predict_latent(X[:1] + 1e3)
    np.testing.assert_allclose(np.exp(mean[0]) / np.exp(mean[0]).sum(), [0.6, 0.3, 0.1])
    assert np.argmax(head.predict_proba(X[:1] + 1e3)) == 0


def test_predict_latent_shapes(blobs, fitted):
    X, _ = blobs
    mean, var = fitted.predict_latent(X[:5])
    assert mean.shape == var.shape == (5, 3)
    assert np.all(var > 0)
    assert fitted.predict_variance(X[:5]).shape == (5,)


def test_duplicate_rows_fewer_than_n_inducing():
    """Fewer distinct rows than n_inducing: all distinct rows become inducing points."""
    X = np.repeat(np.eye(4), 5, axis=0)
    y = np.repeat([0, 1, 2, 3], 5)
    head = GpHead(n_inducing=10, max_iter=20, random_state=0).fit(X, y)
    assert head.inducing_points_.shape == (4, 4)
    np.testing.assert_array_equal(head.predict(X), y)


def test_one_feature_and_one_sample_per_class():
    X, y = np.array([[0.0], [1.0], [5.0]]), np.array([0, 1, 2])
    head = GpHead(n_inducing=5, random_state=0).fit(X, y)
    assert head.predict_proba(X).shape == (3, 3)


# ---------------------------------------------------------------------- feature groups
def test_feature_groups_ok():
    X, y = make_classification(120, 5, n_informative=3, n_redundant=0, n_classes=3,
                               random_state=0)
    head = GpHead(n_inducing=20, feature_groups=(2, 3), max_iter=30, random_state=0)
    head.fit(X, y)
    assert head.feature_groups_ == (2, 3)
    assert head.kernel_variance_.shape == head.kernel_lengthscale_.shape == (2,)
    assert head.score(X, y) > 0.8
    # One block of all columns is the same model as feature_groups=None.
    one = GpHead(n_inducing=20, feature_groups=(5,), max_iter=30, random_state=0).fit(X, y)
    none = GpHead(n_inducing=20, max_iter=30, random_state=0).fit(X, y)
    np.testing.assert_array_equal(one.predict_proba(X), none.predict_proba(X))


@pytest.mark.parametrize("groups, match", [
    ((2, 2), r"feature_groups=\(2, 2\) covers 4 features, but X has 5 features"),
    ((3, 3), r"covers 6 features, but X has 5 features.*summing to 5"),
    ((5, 0), r"got \(5, 0\)\. Item 1 \(0\) is not an integer >= 1"),
    ((2.5, 2.5), r"got \(2.5, 2.5\)\. Item 0 \(2.5\) is not an integer >= 1"),
    ("5", r"feature_groups must be a tuple of block sizes .* or None, got '5'"),
    (5, r"feature_groups must be a tuple of block sizes .* or None, got 5"),
])
def test_feature_groups_error(groups, match):
    X, y = random_problem(5, n=20, d=5)
    with pytest.raises(InvalidParameterError, match=match):
        GpHead(feature_groups=groups).fit(X, y)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("params, match", [
    ({"kernel": "rbff"}, r"kernel must be one of 'rbf', 'matern52', got 'rbff'.*'rbf'"),
    ({"n_inducing": 0}, r"n_inducing must be an integer >= 1, got 0"),
    ({"max_iter": -1}, r"max_iter must be an integer >= 0, got -1"),
    ({"n_mc_samples": 1.5}, r"n_mc_samples must be an integer"),
    ({"alpha_eps": 0.0}, r"alpha_eps must be 'auto' or a positive number.*got 0.0"),
    ({"alpha_eps": "fixed"}, r"alpha_eps must be 'auto' or a positive number"),
    ({"alpha_eps": float("nan")}, r"alpha_eps must be 'auto' or a positive number"),
])
def test_parameter_error(params, match):
    X, y = random_problem(6, n=20)
    with pytest.raises(InvalidParameterError, match=match):
        GpHead(**params).fit(X, y)


@pytest.mark.parametrize("params", [{"kernel": "matern52"}, {"max_iter": 0},
                                    {"n_mc_samples": 1}, {"alpha_eps": 1}])
def test_parameter_ok(params):
    X, y = random_problem(6, n=20)
    head = GpHead(n_inducing=10, **params, random_state=0).fit(X, y)
    assert np.all(np.isfinite(head.predict_proba(X)))


def test_max_iter_reached_warns():
    X, y = random_problem(7, n=40)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1 .*raise max_iter"):
        GpHead(n_inducing=10, alpha_eps=0.01, max_iter=1, random_state=0).fit(X, y)


def test_max_iter_zero_keeps_the_initial_guess_silently():
    X, y = random_problem(7, n=40)
    head = GpHead(n_inducing=10, alpha_eps=0.01, max_iter=0, random_state=0).fit(X, y)
    assert head.n_iter_ == 0


# ---------------------------------------------------------------------- determinism
def test_same_seed_same_model(blobs, fitted):
    X, y = blobs
    again = GpHead(n_inducing=30, max_iter=50, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted.predict_proba(X), fitted.predict_proba(X))
    other = GpHead(n_inducing=30, max_iter=50, random_state=1).fit(X, y)
    assert not np.array_equal(other.inducing_points_, fitted.inducing_points_)


def test_random_state_none_is_resolved_in_fit(blobs):
    X, y = blobs
    head = GpHead(n_inducing=10)
    head.fit(X, y)
    assert head.random_state is None


def test_probabilities_do_not_depend_on_the_batch(blobs, fitted):
    X, _ = blobs
    whole = fitted.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba(X[7:8]), whole[7:8], rtol=1e-12)
    np.testing.assert_allclose(fitted.predict_proba(X[::-1]), whole[::-1], rtol=1e-12)


# ---------------------------------------------------------------------- state
def test_state_round_trip_gives_identical_predictions(blobs, fitted):
    X, _ = blobs
    state, arrays = fitted._get_state()
    state = json.loads(json.dumps(state))          # must be plain JSON
    assert all(np.asarray(a).dtype != object for a in arrays.values())
    fresh = GpHead(**fitted.get_params())._set_state(state, dict(arrays))
    np.testing.assert_array_equal(fresh.predict_proba(X), fitted.predict_proba(X))
    for got, want in zip(fresh.predict_latent(X), fitted.predict_latent(X)):
        np.testing.assert_array_equal(got, want)
    assert fresh.alpha_eps_log_loss_ == fitted.alpha_eps_log_loss_


def test_save_and_load_through_the_registry(blobs, fitted, tmp_path):
    X, _ = blobs
    assert registered_class("GpHead", "test") is GpHead
    save(fitted, tmp_path / "gp")
    loaded = load(tmp_path / "gp")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_unfitted_state_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GpHead()._get_state()


# ---------------------------------------------------------------------- scaling
@pytest.mark.slow
def test_scales_to_5000_samples_of_512_features():
    """The issue's target size fits (timings live in benchmarks/gp_scaling.py)."""
    X, y = make_classification(5500, 512, n_informative=50, n_redundant=20, n_classes=10,
                               n_clusters_per_class=1, random_state=0)
    head = GpHead(random_state=0).fit(X[:5000], y[:5000])
    proba = head.predict_proba(X[5000:])
    assert proba.shape == (500, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert head.score(X[5000:], y[5000:]) > 0.25          # chance is 0.1
