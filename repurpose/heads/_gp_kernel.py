"""The GPy side of the GP head (:mod:`._gp`) and how its hyper-parameters are chosen.

Kernels (one GPy kernel per block of feature columns, summed), the GPy model whose
likelihood is the collapsed bound of :mod:`._gp_bound`, the initial guesses (k-means
inducing inputs, median-distance lengthscales) and the choice of ``alpha_eps='auto'``: by
held-out log-loss over folds, or by closed-form leave-one-out when the GP is exact.
"""
import functools

import numpy as np
from scipy.linalg import solve_triangular

from .._gpy import import_gpy, quiet_gpy
from ._gp_bound import (_Bound, _cholesky, _latent_posterior, _mc_softmax,
                        dirichlet_prior_mean, dirichlet_targets)

#: Training points used for the median-distance guess of each lengthscale.
_N_LENGTHSCALE_GUESS = 500
#: The folds and the Monte-Carlo draws of the held-out log-loss of ``alpha_eps='auto'``.
_N_CV_FOLDS = 3
_N_CV_DRAWS = 200
#: Multipliers of the ML-II kernel variance and lengthscale scored by leave-one-out when
#: the GP is exact (see ``GpHead._choose_alpha_eps``).
_LOO_VARIANCE_FACTORS = (1.0, 4.0, 16.0)
_LOO_LENGTHSCALE_FACTORS = (1.0, 1.5, 2.0, 3.0)


@functools.lru_cache(maxsize=None)
def _model_class():
    """The GPy model class (built on first use so that importing the head skips GPy)."""
    GPy = import_gpy()
    from paramz import ObsAr

    class DirichletSparseGP(GPy.core.Model):
        """Joint sparse-GP regression of the Dirichlet targets of every class.

        One GPy kernel (linked as the only parameter) is shared by the classes; inducing
        inputs are fixed. :meth:`parameters_changed` evaluates :class:`_Bound` and passes
        its matrix gradients through GPy's kernel gradients, as ``GPy.core.SparseGP`` does.
        """

        def __init__(self, kern, X, Z, y, mean, alpha_eps):
            super().__init__(name="dirichlet_sparse_gp")
            # Observable arrays let GPy's kernels cache the slices and distances of the
            # fixed X and Z across evaluations, as GPy's own models do.
            self.X, self.Z = ObsAr(X), ObsAr(Z)
            self.y, self.mean, self.alpha_eps = y, mean, alpha_eps
            self.kern = kern
            self.link_parameter(kern)
            self.bound = None
            self.parameters_changed()

        def parameters_changed(self):
            Kmm = self.kern.K(self.Z)
            Knm = self.kern.K(self.X, self.Z)
            Kdiag = self.kern.Kdiag(self.X)
            self.bound = bound = _Bound(Kmm, Knm, Kdiag, self.y, self.mean, self.alpha_eps)
            self.kern.update_gradients_diag(bound.dL_dKdiag, self.X)
            grad = self.kern.gradient.copy()
            self.kern.update_gradients_full(bound.dL_dKnm, self.X, self.Z)
            grad += self.kern.gradient
            self.kern.update_gradients_full(bound.dL_dKmm, self.Z, None)
            self.kern.gradient += grad

        def log_likelihood(self):
            return self.bound.value

    return DirichletSparseGP


def _make_kernel(kernel, feature_groups, variances=None, lengthscales=None):
    """One GPy kernel per block of columns, summed; parameters set if given."""
    with quiet_gpy():
        return _build_kernel(import_gpy(), kernel, feature_groups, variances, lengthscales)


def _build_kernel(GPy, kernel, feature_groups, variances, lengthscales):
    cls = {"rbf": GPy.kern.RBF, "matern52": GPy.kern.Matern52}[kernel]
    parts, start = [], 0
    for g, size in enumerate(feature_groups):
        dims = np.arange(start, start + size)
        start += size
        part = cls(input_dim=size, active_dims=dims, ARD=False, name=f"{kernel}_{g}")
        if variances is not None:
            part.variance[:] = variances[g]
            part.lengthscale[:] = lengthscales[g]
        parts.append(part)
    return parts[0] if len(parts) == 1 else GPy.kern.Add(parts, name="sum")


def _kernel_values(kern, groups):
    """Variance and lengthscale of each block's kernel, as two arrays of shape (n_groups,)."""
    parts = kern.parts if len(groups) > 1 else [kern]
    return (np.array([float(p.variance) for p in parts]),
            np.array([float(p.lengthscale) for p in parts]))


def _median_distance(X, rng):
    """Median pairwise distance among (a subsample of) the rows of ``X``; 0 if all equal."""
    if len(X) > _N_LENGTHSCALE_GUESS:
        X = X[rng.choice(len(X), _N_LENGTHSCALE_GUESS, replace=False)]
    sq = np.sum(X ** 2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0)
    d2 = d2[np.triu_indices(len(X), k=1)]
    d2 = d2[d2 > 1e-12 * max(d2.max(initial=0.0), 1.0)]
    return float(np.sqrt(np.median(d2))) if len(d2) else 0.0


def _inducing_inputs(X, n_inducing, rng):
    """``n_inducing`` k-means centres of ``X`` (all distinct rows when there are fewer)."""
    distinct = np.unique(X, axis=0)
    if len(distinct) <= n_inducing:
        return distinct
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_inducing, n_init=1, max_iter=50,
                random_state=rng.randint(np.iinfo(np.int32).max))
    km.fit(X)
    return km.cluster_centers_


def _cv_folds(y, random_state):
    """Up to 3 shuffled folds, stratified when every class has that many samples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n_splits = min(_N_CV_FOLDS, len(y))
    seed = random_state.randint(np.iinfo(np.int32).max)
    if np.bincount(y).min() >= n_splits:
        return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(y, y))
    return list(KFold(n_splits, shuffle=True, random_state=seed).split(y))


def _cross_validated_log_loss(kern, Xs, Z, y, n_classes, grid, random_state):
    """Held-out log-loss of each ``alpha_eps`` in ``grid``, kernel and inducing points fixed.

    Given the kernel, a candidate costs one posterior per fold (no optimisation): the
    kernel matrices of the whole training set are computed once and sliced by fold.
    """
    with quiet_gpy():
        Kmm, Knm, Kdiag = kern.K(Z), kern.K(Xs, Z), kern.Kdiag(Xs)
    folds = _cv_folds(y, random_state)
    z = random_state.standard_normal((_N_CV_DRAWS, n_classes))
    scores = []
    for eps in grid:
        mean = dirichlet_prior_mean(y, n_classes, eps)
        loss = 0.0
        for train, test in folds:
            bound = _Bound(Kmm, Knm[train], Kdiag[train], y[train], mean, eps,
                           gradients=False)
            mu, var = _latent_posterior(Knm[test], Kdiag[test], bound.weights, mean,
                                        bound.chol_kmm, bound.chol_sigma)
            p = _mc_softmax(mu, var, z)[np.arange(len(test)), y[test]]
            loss -= np.sum(np.log(np.maximum(p, 1e-300)))
        scores.append(loss / len(y))
    return np.array(scores)


def _loo_log_loss(K, y, n_classes, eps, z):
    """Leave-one-out log-loss of the exact GP with training covariance ``K`` (n, n).

    Each class is a GP regression with per-point noise, so the latent posterior at ``x_i``
    given every other point is closed-form (Rasmussen & Williams, 2006, eq. 5.12): with
    ``Kc = K + diag(noise_c)`` and ``a = Kc^-1 (y_c - m_c)``, the mean is
    ``y_ci - a_i / [Kc^-1]_ii`` and the latent variance ``1 / [Kc^-1]_ii - noise_ci``. The
    held-out label's probability then follows the head's own Monte-Carlo predictive.
    """
    mean = dirichlet_prior_mean(y, n_classes, eps)
    y_tilde, noise_var = dirichlet_targets(y, n_classes, eps)
    n = len(y)
    mu, var = np.empty((n, n_classes)), np.empty((n, n_classes))
    eye = np.eye(n)
    for c in range(n_classes):
        L = _cholesky(K + np.diag(noise_var[:, c]), "The training covariance")
        L_inv = solve_triangular(L, eye, lower=True, check_finite=False)
        diag = np.sum(L_inv ** 2, axis=0)                              # diag(Kc^-1)
        a = L_inv.T @ (L_inv @ (y_tilde[:, c] - mean[c]))
        mu[:, c] = y_tilde[:, c] - a / diag
        var[:, c] = np.maximum(1.0 / diag - noise_var[:, c], 1e-12 * np.diag(K))
    p = _mc_softmax(mu, var, z)[np.arange(n), y]
    return -float(np.mean(np.log(np.maximum(p, 1e-300))))


def _select_by_leave_one_out(kernel, kern, groups, Xs, y, n_classes, grid, random_state):
    """Kernel (scaled from the ML-II one) and ``alpha_eps`` of least leave-one-out log-loss.

    Returns ``(variances, lengthscales, eps, scores)``, ``scores`` holding the best loss
    of each ``eps`` over the kernels.
    """
    variances, lengthscales = _kernel_values(kern, groups)
    z = random_state.standard_normal((_N_CV_DRAWS, n_classes))
    best, scores = None, np.full(len(grid), np.inf)
    for fv in _LOO_VARIANCE_FACTORS:
        for fl in _LOO_LENGTHSCALE_FACTORS:
            candidate = _make_kernel(kernel, groups, variances * fv, lengthscales * fl)
            with quiet_gpy():
                K = candidate.K(Xs)
            for i, eps in enumerate(grid):
                loss = _loo_log_loss(K, y, n_classes, eps, z)
                scores[i] = min(scores[i], loss)
                if best is None or loss < best[0]:
                    best = (loss, variances * fv, lengthscales * fl, eps)
    return best[1], best[2], best[3], scores
