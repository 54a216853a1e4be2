"""Gaussian-process surrogate on GPy: Matern-5/2 with ARD, standardised outputs, seeded restarts.
"""
import contextlib
import logging
import warnings

import numpy as np

from ..exceptions import DataError, NotFittedError

__all__ = ["GPSurrogate"]


def _import_gpy():
    """Import GPy without its harmless import-time warnings (unclosed data files, deprecated
    numpy names), which ``filterwarnings = error`` would otherwise turn into failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import GPy
    return GPy


@contextlib.contextmanager
def _quiet_gpy():
    """Silence GPy's and paramz's harmless warnings, here only (never globally): paramz assigns
    ``ndarray.data`` (numpy 1.23 deprecates it) and its ``Logexp`` transform overflows in
    ``np.exp`` for large optimiser steps (it clips the result)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Assigning the 'data' attribute",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="overflow encountered",
                                category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="invalid value encountered",
                                category=RuntimeWarning)
        warnings.filterwarnings("ignore", message="divide by zero",
                                category=RuntimeWarning)
        # paramz logs that the Logistic (bounded) transform has no log-Jacobian; none is
        # wanted: the length-scale prior is meant on the length-scale, not its transform.
        paramz_logger = logging.getLogger("paramz.transformations")
        level = paramz_logger.level
        paramz_logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            paramz_logger.setLevel(level)


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
    lengthscale_prior : (float, float) or None, default=None
        Shape and rate of a Gamma prior on each length-scale (inputs are in the unit cube),
        e.g. ``(3.0, 6.0)``; the hyper-parameters are then the maximum a posteriori ones.
        It helps on Hartmann-6 (fewer runs stuck in a local basin) but costs precision on
        smooth low-dimensional problems, so it is off by default.

    Examples
    --------
    >>> X = np.linspace(0, 1, 6)[:, None]
    >>> gp = GPSurrogate(seed=0).fit(X, np.sin(6 * X[:, 0]))
    >>> mean, var = gp.predict(X)
    >>> bool(np.allclose(mean, np.sin(6 * X[:, 0]), atol=1e-2))
    True
    """

    def __init__(self, n_restarts=2, noise_floor=1e-6, seed=None, lengthscale_prior=None):
        self.n_restarts = n_restarts
        self.lengthscale_prior = lengthscale_prior
        self.noise_floor = noise_floor
        self.seed = seed
        self.model_ = None

    def _build(self, X, y_std):
        GPy = _import_gpy()
        with _quiet_gpy():
            kernel = GPy.kern.Matern52(X.shape[1], ARD=True)
            model = GPy.models.GPRegression(X, y_std[:, None], kernel)
            # Optional MAP: a Gamma prior on the length-scales keeps early fits from declaring
            # dimensions irrelevant (length-scale at the upper bound). Set before the bounds:
            # the bounded (Logistic) transform then leaves the prior on the length-scale
            # itself (paramz adds no log-Jacobian for it).
            if self.lengthscale_prior is not None:
                kernel.lengthscale.set_prior(GPy.priors.Gamma(*self.lengthscale_prior),
                                             warning=False)
            kernel.lengthscale.constrain_bounded(1e-2, 1e2, warning=False)
            kernel.variance.constrain_bounded(1e-2, 1e2, warning=False)
            model.likelihood.variance.constrain_bounded(self.noise_floor, 1.0, warning=False)
        return model

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
        model = self._build(X, y_std)
        best, best_nll = None, np.inf
        with _quiet_gpy():
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
        return self

    def set_data(self, X, y):
        """Replace the data keeping the fitted hyper-parameters (for fantasised points)."""
        self._check_fitted()
        y_std = (np.asarray(y, dtype=float).ravel() - self.y_mean_) / self.y_scale_
        with _quiet_gpy():
            self.model_.set_XY(np.atleast_2d(np.asarray(X, dtype=float)), y_std[:, None])
        return self

    def _check_fitted(self):
        if self.model_ is None:
            raise NotFittedError("This GPSurrogate is not fitted yet; call fit(X, y) first.")

    def predict(self, X):
        """Return the posterior mean and variance (of the noise-free function) at rows ``X``,
        each of shape (n,), in the units of ``y``."""
        self._check_fitted()
        X = np.atleast_2d(np.asarray(X, dtype=float))
        with _quiet_gpy():
            mean, var = self.model_.predict_noiseless(X)
        mean = mean[:, 0] * self.y_scale_ + self.y_mean_
        var = np.maximum(var[:, 0], 1e-12) * self.y_scale_ ** 2
        return mean, var
