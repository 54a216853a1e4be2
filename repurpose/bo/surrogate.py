"""Gaussian-process surrogate on GPy: Matern-5/2 with ARD, standardised outputs, seeded restarts.
"""
import numpy as np
from scipy.linalg import solve_triangular
from scipy.stats import yeojohnson

from .._gpy import import_gpy, quiet_gpy
from . import _mixed_gp
from ..exceptions import DataError, InvalidParameterError, NotFittedError

__all__ = ["GPSurrogate", "warp_outputs", "fit_choosing_warping"]

_SQRT5 = float(np.sqrt(5.0))
# Median length-scale of the 'dimension-scaled' prior for one input, in the unit cube:
# exp(sqrt(2) - 2), which with the sqrt(d) scaling is exp(sqrt(2) + log(d) / 2 - 2). Chosen on
# Hartmann-6, Branin, Ackley-5 and the mixed space (docs/benchmarks/bo.md); Hvarfner et al.'s
# own location, exp(sqrt(2)) sqrt(d), suits higher dimensions than tuning spaces have.
_PRIOR_MEDIAN = float(np.exp(np.sqrt(2.0) - 2.0))


def warp_outputs(y):
    """Standardise objective values and apply the Yeo-Johnson power transform fitted to them
    by maximum likelihood.

    A monotone map that makes skewed values (a few very bad trials among many good ones, as
    on valley-shaped functions or when a setting makes training diverge) closer to
    Gaussian, which a GP assumes. The order of the values is kept, so the best trial stays
    the best. :class:`BayesianOptimizer` fits its surrogate to the warped values unless
    ``output_warping=False``.

    Parameters
    ----------
    y : array-like of shape (n,)
        Finite objective values.

    Returns
    -------
    ndarray of shape (n,)
        The warped values, with mean 0 and standard deviation 1; only standardised where
        the transform is not defined or not finite (fewer than 3 distinct values).

    References
    ----------
    Cowen-Rivers et al. (2022). HEBO: pushing the limits of sample-efficient hyper-parameter
    optimisation. JAIR (output warping by a power transform).

    Examples
    --------
    >>> y = np.exp(np.arange(10.0))  # values over four decades, a few far above the rest
    >>> float(np.round(((y - y.mean()) / y.std()).max(), 2))  # standardised only
    2.8
    >>> w = warp_outputs(y)
    >>> np.round(w, 2).tolist()
    [-0.8, -0.8, -0.79, -0.76, -0.68, -0.48, -0.01, 0.85, 1.59, 1.89]
    >>> bool(np.all(np.diff(w) > 0))  # the order is kept
    True
    """
    z = _standardise(y)
    warped = _yeo_johnson(z)
    return z if warped is None else warped[0]


def _standardise(y):
    """``y`` as a flat float array with mean 0 and standard deviation 1 (only centred if
    constant)."""
    y = np.asarray(y, dtype=float).ravel()
    if len(y) == 0:
        return y
    scale = float(y.std())
    return (y - y.mean()) / scale if scale > 0 else y - y.mean()


def _yeo_johnson(z):
    """The Yeo-Johnson transform of standardised values ``z``, fitted by maximum likelihood
    and standardised, and the log of its derivative summed over ``z`` (the log-Jacobian,
    which makes evidence for the warped values comparable with evidence for ``z``); None
    where it is not defined or not finite (fewer than 3 distinct values)."""
    if len(np.unique(z)) < 3:
        return None
    with np.errstate(all="ignore"):
        try:
            w, lam = yeojohnson(z)
        except (ValueError, FloatingPointError):  # pragma: no cover (scipy's own failures)
            return None
        if not np.all(np.isfinite(w)) or w.std() == 0:
            return None
        # d/dz of the transform: (z + 1)^(lam - 1) for z >= 0, (1 - z)^(1 - lam) below.
        log_slope = np.where(z >= 0, (lam - 1) * np.log1p(np.abs(z)),
                             (1 - lam) * np.log1p(np.abs(z)))
        log_jacobian = float(np.sum(log_slope) - len(z) * np.log(w.std()))
    if not np.isfinite(log_jacobian):  # pragma: no cover (w is finite, so is its slope)
        return None
    return (w - w.mean()) / w.std(), log_jacobian


def fit_choosing_warping(X, y, make_surrogate):
    """Fit a surrogate to the standardised values of ``y`` and another to their warp
    (:func:`warp_outputs`); keep the one under which the values are more probable.

    The comparison is of marginal likelihoods (times the length-scale prior, at the fitted
    hyper-parameters), the warped one corrected by the warp's log-Jacobian so that both are
    densities of the same standardised values: a Bayesian choice between the two models,
    made by the data themselves. Warping helps where a few bad values dwarf the rest and
    hurts where the values are already close to Gaussian; no cheap statistic of the values
    alone told the two apart on the benchmark suite (``docs/benchmarks/bo.md``).

    Parameters
    ----------
    X : array-like of shape (n, d)
        Encoded rows.
    y : array-like of shape (n,)
        Finite objective values.
    make_surrogate : callable
        ``make_surrogate()`` returns a new, unfitted :class:`GPSurrogate`; called twice
        (once if the warp is not defined), so two fits start alike.

    Returns
    -------
    warped : bool
        Whether the warped values won.
    surrogate : GPSurrogate
        The surrogate fitted to the chosen values.
    targets : ndarray of shape (n,)
        The chosen values (standardised, or warped), in which the surrogate predicts.

    Examples
    --------
    >>> X = np.linspace(0, 1, 12)[:, None]
    >>> make = lambda: GPSurrogate(seed=0)
    >>> fit_choosing_warping(X, np.sin(6 * X[:, 0]), make)[0]  # already close to Gaussian
    False
    >>> fit_choosing_warping(X, np.exp(12 * X[:, 0]), make)[0]  # a few values dwarf the rest
    True
    """
    z = _standardise(y)
    plain = make_surrogate().fit(X, z)
    warped = _yeo_johnson(z)
    if warped is None:
        return False, plain, z
    w, log_jacobian = warped
    model = make_surrogate().fit(X, w)
    if model.log_evidence_ + log_jacobian > plain.log_evidence_:
        return True, model, w
    return False, plain, z


class GPSurrogate:
    """GP regression with a Matern-5/2 ARD kernel, fitted by maximum marginal likelihood
    (maximum a posteriori with ``lengthscale_prior``).

    Outputs are standardised before fitting; kernel variance, length-scales and the Gaussian
    noise variance (bounded below by ``noise_floor``, in standardised units) are fitted from
    ``n_restarts`` starts: a fixed one, then random ones drawn from ``seed``.

    Parameters
    ----------
    n_restarts : int, default=2
        Starts of the hyper-parameter optimisation.
    noise_floor : float, default=1e-6
        Lower bound of the noise variance (relative to the output variance).
    seed : int or None, default=None
        Seeds the random restarts.
    lengthscale_prior : 'dimension-scaled', (float, float) or None, default='dimension-scaled'
        Prior on each length-scale (inputs are in the unit cube); the hyper-parameters are
        then the maximum a posteriori ones. ``'dimension-scaled'``: log-normal with median
        ``0.56 * sqrt(d)`` and log-scale standard deviation ``sqrt(3)`` (wide), after
        Hvarfner, Hellsten and Nardi (2024), who scale the prior's location with ``sqrt(d)``
        so that higher-dimensional inputs start smoother. It keeps early fits (10-20 points)
        from declaring a dimension irrelevant (length-scale at the upper bound), which made
        runs commit to a local basin (see ``docs/benchmarks/bo.md``). A pair ``(a, b)``: a
        Gamma prior of shape ``a`` and rate ``b``. None: maximum likelihood.
    categorical_columns : array-like of int, default=None
        The one-hot columns of categorical parameters (``SearchSpace.categorical_columns``).
        With some, and other columns too, the kernel is ``M(o) (a + s R'(c)) + b R(c)``:
        Matern-5/2 ``M`` over the other columns, squared-exponential ``R``, ``R'`` over the
        one-hot ones, so that what the data show about the other columns on one category
        carries over to the rest (after Ru et al. 2020). The length-scale prior applies to
        ``M``'s. None: one Matern kernel over all columns.

    Attributes
    ----------
    log_evidence_ : float
        After :meth:`fit`: the log marginal likelihood of the targets plus the log prior
        density of the length-scales, at the fitted hyper-parameters (-inf if every start
        failed); in the units of the targets given to :meth:`fit`, so two fits to the same
        values compare (:func:`fit_choosing_warping`).

    Examples
    --------
    >>> X = np.linspace(0, 1, 6)[:, None]
    >>> gp = GPSurrogate(seed=0).fit(X, np.sin(6 * X[:, 0]))
    >>> mean, var = gp.predict(X)
    >>> bool(np.allclose(mean, np.sin(6 * X[:, 0]), atol=1e-2))
    True
    """

    def __init__(self, n_restarts=2, noise_floor=1e-6, seed=None,
                 lengthscale_prior="dimension-scaled", categorical_columns=None):
        self.n_restarts = n_restarts
        self.lengthscale_prior = lengthscale_prior
        self.noise_floor = noise_floor
        self.seed = seed
        self.categorical_columns = categorical_columns
        self.model_ = None

    def _split_columns(self, n_columns):
        """The ordinal and the categorical column indices, or None for one Matern kernel
        over all columns (no categorical columns, or no ordinal ones)."""
        if self.categorical_columns is None:
            return None
        cat = np.unique(np.asarray(self.categorical_columns, dtype=int).ravel())
        if cat.size and (cat.min() < 0 or cat.max() >= n_columns):
            raise InvalidParameterError(
                f"categorical_columns must be column indices of X (0 to {n_columns - 1}), "
                f"got {self.categorical_columns!r}.")
        ordinal = np.setdiff1d(np.arange(n_columns), cat)
        if cat.size == 0 or ordinal.size == 0:
            return None
        return ordinal, cat

    def _build(self, X, y_std):
        GPy = import_gpy()
        with quiet_gpy():
            kernel = GPy.kern.Matern52(X.shape[1], ARD=True)
            model = GPy.models.GPRegression(X, y_std[:, None], kernel)
            # Optional MAP: a Gamma prior on the length-scales keeps early fits from declaring
            # dimensions irrelevant (length-scale at the upper bound). Set before the bounds:
            # the bounded (Logistic) transform then leaves the prior on the length-scale
            # itself (paramz adds no log-Jacobian for it).
            prior = self._lengthscale_prior(GPy, X.shape[1])
            if prior is not None:
                kernel.lengthscale.set_prior(prior, warning=False)
            kernel.lengthscale.constrain_bounded(1e-2, 1e2, warning=False)
            kernel.variance.constrain_bounded(1e-2, 1e2, warning=False)
            model.likelihood.variance.constrain_bounded(self.noise_floor, 1.0, warning=False)
        return model

    def _lengthscale_prior(self, GPy, n_dims):
        prior = self.lengthscale_prior
        if prior is None:
            return None
        if isinstance(prior, str):
            if prior != "dimension-scaled":
                raise InvalidParameterError(
                    f"lengthscale_prior must be 'dimension-scaled', a (shape, rate) pair or "
                    f"None, got {prior!r}.")
            # log l ~ N(log(_PRIOR_MEDIAN * sqrt(d)), 3): median 0.56 sqrt(d).
            return GPy.priors.LogGaussian(np.log(_PRIOR_MEDIAN * np.sqrt(n_dims)),
                                          np.sqrt(3.0))
        try:
            shape, rate = (float(v) for v in prior)
        except (TypeError, ValueError):
            shape = rate = float("nan")
        if not (shape > 0 and rate > 0):
            raise InvalidParameterError(
                f"lengthscale_prior must be 'dimension-scaled', a (shape, rate) pair of "
                f"positive numbers or None, got {prior!r}.")
        return GPy.priors.Gamma(shape, rate)

    def fit(self, X, y):
        """Fit to rows ``X`` of shape (n, d) and finite targets ``y`` of shape (n,)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        y = np.asarray(y, dtype=float).ravel()
        if len(X) != len(y) or len(y) == 0:
            raise DataError(f"GPSurrogate.fit needs as many targets as rows and at least "
                            f"1 sample, got X of shape {X.shape} and {len(y)} targets.")
        if not np.all(np.isfinite(y)) or not np.all(np.isfinite(X)):
            raise DataError("GPSurrogate.fit got NaN or inf; impute failed trials first.")
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) if y.std() > 0 else 1.0
        y_std = (y - self.y_mean_) / self.y_scale_
        rng = np.random.default_rng(self.seed)
        split = self._split_columns(X.shape[1])
        if split is not None:
            GPy = import_gpy()
            # The prior's median scales with all columns, as for the one-kernel fit (on the
            # ordinal columns' count alone, Ackley on the mixed space fitted worse: 10 seeds).
            prior = self._lengthscale_prior(GPy, X.shape[1])
            self.model_, self._noise, best_nll = _mixed_gp.fit(
                X, y_std, *split, prior, self.noise_floor, self.n_restarts, rng)
            self._set_log_evidence(best_nll, len(y))
            self._X = X.copy()
            self._set_mixed_posterior(y_std)
            return self
        model = self._build(X, y_std)
        best, best_nll = None, np.inf
        with quiet_gpy():
            for restart in range(max(int(self.n_restarts), 1)):
                if restart == 0:
                    model.kern.lengthscale[:] = 0.3
                    model.kern.variance[:] = 1.0
                    model.likelihood.variance[:] = max(1e-3, self.noise_floor)
                else:
                    model.kern.lengthscale[:] = np.exp(rng.uniform(np.log(0.03), np.log(3.0),
                                                                   X.shape[1]))
                    model.kern.variance[:] = np.exp(rng.uniform(np.log(0.3), np.log(3.0)))
                    model.likelihood.variance[:] = np.exp(
                        rng.uniform(np.log(max(1e-5, self.noise_floor)), np.log(1e-1)))
                try:
                    model.optimize(messages=False, max_iters=200)
                except np.linalg.LinAlgError:
                    continue
                nll = float(model.objective_function())  # -log likelihood - log prior
                if np.isfinite(nll) and nll < best_nll:
                    best, best_nll = model.param_array.copy(), nll
            if best is not None:
                model[:] = best
        self.model_ = model
        self._set_log_evidence(best_nll, len(y))
        self._cache_posterior()
        return self

    def _set_log_evidence(self, nll, n):
        # -nll is the density of the standardised targets; y's own divides it by scale^n.
        self.log_evidence_ = -float(nll) - n * np.log(self.y_scale_)

    def _cache_posterior(self):
        """Keep what prediction needs as plain arrays: the kernel's hyper-parameters, the
        inputs, GPy's Woodbury vector and the Cholesky factor of the kernel matrix.
        Predicting from these in numpy (rather than through
        ``GPRegression.predict_noiseless``) is several times faster for the thousands of
        points an acquisition optimiser scores, and gives exact gradients for its L-BFGS-B
        steps (GPy returns no gradient of the noiseless variance per point)."""
        model = self.model_
        post = model.posterior
        # The Cholesky factor L of K + noise I, not GPy's explicit inverse W: near observed
        # points the variance k** - k W k' cancels terms of size cond(K) ~ 1 / noise down to
        # ~1e-9, so with W it is round-off (wrong by several times) exactly where the
        # acquisition is refined; k** - |L^-1 k|^2 loses only ~sqrt(cond(K)) digits.
        self._chol = np.asarray(post.woodbury_chol, dtype=float)
        self._alpha = np.asarray(post.woodbury_vector, dtype=float)[:, 0]
        self._X = np.asarray(model.X, dtype=float).copy()
        self._lengthscale = np.asarray(model.kern.lengthscale, dtype=float).copy()
        self._kernel_variance = float(model.kern.variance)

    def _set_mixed_posterior(self, y_std):
        self._chol, self._alpha = _mixed_gp.posterior(self.model_, self._X, y_std, self._noise)
        self._kernel_variance = self.model_.prior_variance

    def set_data(self, X, y):
        """Replace the data keeping the fitted hyper-parameters (for fantasised points)."""
        self._check_fitted()
        y_std = (np.asarray(y, dtype=float).ravel() - self.y_mean_) / self.y_scale_
        if isinstance(self.model_, _mixed_gp.MixedKernel):
            self._X = np.atleast_2d(np.asarray(X, dtype=float)).copy()
            self._set_mixed_posterior(y_std)
            return self
        with quiet_gpy():
            self.model_.set_XY(np.atleast_2d(np.asarray(X, dtype=float)), y_std[:, None])
        self._cache_posterior()
        return self

    def _check_fitted(self):
        if self.model_ is None:
            raise NotFittedError("This GPSurrogate is not fitted yet; call fit(X, y) first.")

    def predict(self, X):
        """Return the posterior mean and variance (of the noise-free function) at rows ``X``,
        each of shape (n,), in the units of ``y``."""
        mean, var, _, _ = self._predict(X, gradient=False)
        return mean, var

    def predict_with_gradient(self, X):
        """Posterior mean and variance as :meth:`predict`, and their gradients with respect to
        the inputs, each of shape (n, d)."""
        return self._predict(X, gradient=True)

    def _predict(self, X, gradient):
        self._check_fitted()
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if isinstance(self.model_, _mixed_gp.MixedKernel):
            K, dK = self.model_.matrix(X, self._X, gradient)
        else:
            K, dK = self._matern_matrix(X, gradient)
        V = solve_triangular(self._chol, K.T, lower=True, check_finite=False)  # L^-1 k'
        mean = K @ self._alpha
        var_std = np.maximum(self._kernel_variance - np.einsum("mn,mn->n", V, V), 1e-12)
        scale = self.y_scale_
        if not gradient:
            return mean * scale + self.y_mean_, var_std * scale ** 2, None, None
        dmean = np.einsum("nmd,m->nd", dK, self._alpha)
        KW = solve_triangular(self._chol.T, V, lower=False, check_finite=False)  # (K+nI)^-1 k'
        dvar = -2.0 * np.einsum("mn,nmd->nd", KW, dK)
        dvar = np.where((var_std > 1e-12)[:, None], dvar, 0.0)
        return (mean * scale + self.y_mean_, var_std * scale ** 2, dmean * scale,
                dvar * scale ** 2)

    def _matern_matrix(self, X, gradient):
        """K(X, observed rows) of the Matern kernel, and with ``gradient`` dK/dX (n, m, d).

        Not :func:`_mixed_gp.matern52` times the variance: the order of the products here
        is the one earlier versions used, so that suggestions on spaces without categorical
        parameters stay the same bit for bit (and the benchmark's earlier runs reproduce)."""
        # Matern-5/2: k(r) = s (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r), r the length-scaled
        # distance; dk/dx_j = -5/3 s (1 + sqrt5 r) exp(-sqrt5 r) (x_j - x'_j) / l_j^2.
        A, B = X / self._lengthscale, self._X / self._lengthscale
        if gradient:
            diff = A[:, None, :] - B[None, :, :]  # (n, m, d): only for the few points refined
            r2 = np.einsum("nmd,nmd->nm", diff, diff)
        else:  # the expanded square: one matrix product for thousands of candidates
            r2 = (np.einsum("nd,nd->n", A, A)[:, None] + np.einsum("md,md->m", B, B)[None, :]
                  - 2.0 * A @ B.T)
        r = np.sqrt(np.maximum(r2, 0.0))
        e = np.exp(-_SQRT5 * r)
        K = self._kernel_variance * (1.0 + _SQRT5 * r + 5.0 / 3.0 * r ** 2) * e  # (n, m)
        if not gradient:
            return K, None
        # dK[n, m, j]: derivative of K[n, m] with respect to X[n, j].
        dK = (-5.0 / 3.0 * self._kernel_variance * (1.0 + _SQRT5 * r) * e)[:, :, None] * (
            diff / self._lengthscale)
        return K, dK
