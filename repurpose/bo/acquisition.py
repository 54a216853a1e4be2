"""Acquisition functions (higher is better) for minimisation, composable with ``+`` and ``*``.

Every acquisition has ``evaluate(X)`` on encoded rows of shape (n, n_columns). Expected
improvement is computed in log space (``LogExpectedImprovement``) so that it stays finite and
ordered far in the tail, where plain EI underflows to 0 and gives the optimiser a flat
landscape.

References
----------
Ament, Daulton, Eriksson, Balandat, Bakshy (2023). Unexpected improvements to expected
improvement for Bayesian optimization. NeurIPS.
"""
import abc
import math

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

__all__ = ["Acquisition", "ExpectedImprovement", "LogExpectedImprovement",
           "ProbabilityOfImprovement", "UpperConfidenceBound", "log_h"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)


def log_h(z):
    """``log(phi(z) + z * Phi(z))``, stable for all ``z`` (EI = sigma * h(z)).

    For ``z > -1`` the direct form is accurate. Below, ``h(z) = phi(z) * (1 - c)`` with
    ``c = sqrt(pi/2) |z| erfcx(|z| / sqrt 2)``, and for ``|z| > 1e3`` the asymptotic series
    ``1 - c = z^-2 (1 - 3 z^-2 + 15 z^-4)``.

    Examples
    --------
    >>> float(np.exp(log_h(0.0)))  # phi(0)
    0.398942...
    >>> bool(np.isfinite(log_h(-1e6)))
    True
    """
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    mid = z > -1
    zm = z[mid]
    out[mid] = np.log(np.exp(-0.5 * zm ** 2 - _LOG_SQRT_2PI) + zm * ndtr(zm))
    tail = ~mid
    a = -z[tail]
    log_phi = -0.5 * a ** 2 - _LOG_SQRT_2PI
    far = a > 1e3
    a_near = np.where(far, 1.0, a)  # the far branch is computed separately below
    near_val = np.log1p(-_SQRT_HALF_PI * a_near * erfcx(a_near / math.sqrt(2)))
    inv2 = 1.0 / np.where(far, a, 1.0) ** 2
    far_val = np.log(inv2) + np.log1p(-3 * inv2 + 15 * inv2 ** 2)
    out[tail] = log_phi + np.where(far, far_val, near_val)
    return out if out.ndim else out[()]


def _log_h_slope(z):
    """``d log h(z) / dz = Phi(z) / h(z)``, computed in log space (stable in the tail)."""
    return np.exp(log_ndtr(z) - log_h(z))


class Acquisition(abc.ABC):
    """An acquisition function: maps encoded rows to scores, higher is better.

    Subclasses implement :meth:`evaluate`; :meth:`evaluate_with_gradient` is optional.
    Acquisitions compose: ``a + b`` and ``a * b`` are acquisitions too.

    See Also
    --------
    AcquisitionOptimizer : maximises an acquisition over a search space.

    Examples
    --------
    A custom acquisition that prefers rows whose first column is near 0.3:

    >>> class Closeness(Acquisition):
    ...     def evaluate(self, X):
    ...         return -np.abs(X[:, 0] - 0.3)
    >>> (Closeness() + Closeness()).evaluate(np.array([[0.2], [0.6]]))
    array([-0.2, -0.6])
    """

    @abc.abstractmethod
    def evaluate(self, X):
        """Return scores of shape (n,) for encoded rows ``X`` of shape (n, n_columns)."""

    def evaluate_with_gradient(self, X):
        """Scores of shape (n,) and their gradients (n, n_columns) with respect to ``X``.

        Raises :class:`NotImplementedError` where no analytic gradient exists (the optimiser
        then falls back to finite differences)."""
        raise NotImplementedError(f"{type(self).__name__} has no analytic gradient.")

    def __add__(self, other):
        return Sum(self, other)

    def __mul__(self, other):
        return Product(self, other)


class Sum(Acquisition):
    """Sum of two acquisitions."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def evaluate(self, X):
        return self.first.evaluate(X) + self.second.evaluate(X)

    def evaluate_with_gradient(self, X):
        (a, da), (b, db) = (self.first.evaluate_with_gradient(X),
                            self.second.evaluate_with_gradient(X))
        return a + b, da + db


class Product(Acquisition):
    """Product of two acquisitions."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def evaluate(self, X):
        return self.first.evaluate(X) * self.second.evaluate(X)

    def evaluate_with_gradient(self, X):
        (a, da), (b, db) = (self.first.evaluate_with_gradient(X),
                            self.second.evaluate_with_gradient(X))
        return a * b, da * b[:, None] + a[:, None] * db


class _GPAcquisition(Acquisition):
    def __init__(self, model, best):
        self.model = model
        self.best = float(best)

    def _z(self, X):
        mean, var = self.model.predict(X)
        sigma = np.sqrt(var)
        return (self.best - mean) / sigma, sigma

    def _predict_with_gradient(self, X):
        """The model's mean, variance and their gradients; NotImplementedError without."""
        predict = getattr(self.model, "predict_with_gradient", None)
        if predict is None:
            raise NotImplementedError(f"{type(self.model).__name__} gives no gradients.")
        return predict(np.atleast_2d(np.asarray(X, dtype=float)))

    def _moments_with_gradient(self, X, shift=0.0):
        """``z = (best - shift - mean) / sigma``, sigma and their gradients."""
        mean, var, dmean, dvar = self._predict_with_gradient(X)
        sigma = np.sqrt(var)
        dsigma = dvar / (2.0 * sigma[:, None])
        z = (self.best - shift - mean) / sigma
        dz = (-dmean - z[:, None] * dsigma) / sigma[:, None]
        return z, dz, sigma, dsigma


class LogExpectedImprovement(_GPAcquisition):
    """``log EI(x) = log sigma + log h((best - xi - mu) / sigma)`` (minimisation).

    Parameters
    ----------
    model : object with ``predict(X) -> (mean, var)``
    best : float
        Best (lowest) value observed so far.
    xi : float, default=0.0
        Improvement margin: larger values explore more.

    See Also
    --------
    ExpectedImprovement : the same, not in log space.

    References
    ----------
    Ament, Daulton, Eriksson, Balandat, Bakshy (2023). Unexpected improvements to expected
    improvement for Bayesian optimization. NeurIPS.

    Examples
    --------
    >>> class Toy:  # any model with predict(X) -> (mean, var)
    ...     def predict(self, X):
    ...         return X[:, 0], np.full(len(X), 0.25)
    >>> acq = LogExpectedImprovement(Toy(), best=0.5)
    >>> acq.evaluate(np.array([[0.0], [0.5], [1.0]])).round(4)
    array([-0.6131, -1.6121, -3.1783])
    """

    def __init__(self, model, best, xi=0.0):
        super().__init__(model, best)
        self.xi = float(xi)

    def evaluate(self, X):
        mean, var = self.model.predict(X)
        sigma = np.sqrt(var)
        z = (self.best - self.xi - mean) / sigma
        return np.log(sigma) + log_h(z)

    def evaluate_with_gradient(self, X):
        z, dz, sigma, dsigma = self._moments_with_gradient(X, self.xi)
        value = np.log(sigma) + log_h(z)
        return value, dsigma / sigma[:, None] + _log_h_slope(z)[:, None] * dz


class ExpectedImprovement(LogExpectedImprovement):
    """``EI(x) = sigma * (z Phi(z) + phi(z))``, ``z = (best - xi - mu) / sigma``; computed as
    ``exp`` of :class:`LogExpectedImprovement` (it underflows to 0 far in the tail).

    Parameters
    ----------
    model : object with ``predict(X) -> (mean, var)``
        The surrogate, e.g. a fitted :class:`GPSurrogate`.
    best : float
        Best (lowest) value observed so far.
    xi : float, default=0.0
        Improvement margin: larger values explore more.

    Examples
    --------
    >>> class Toy:  # any model with predict(X) -> (mean, var)
    ...     def predict(self, X):
    ...         return X[:, 0], np.full(len(X), 0.25)
    >>> acq = ExpectedImprovement(Toy(), best=0.5)
    >>> acq.evaluate(np.array([[0.0], [0.5], [1.0]])).round(4)
    array([0.5417, 0.1995, 0.0417])
    """

    def evaluate(self, X):
        return np.exp(super().evaluate(X))

    def evaluate_with_gradient(self, X):
        log_value, dlog = super().evaluate_with_gradient(X)
        value = np.exp(log_value)
        return value, value[:, None] * dlog


class ProbabilityOfImprovement(_GPAcquisition):
    """``log PI(x) = log Phi((best - xi - mu) / sigma)`` (log space, like EI).

    Parameters
    ----------
    model : object with ``predict(X) -> (mean, var)``
        The surrogate, e.g. a fitted :class:`GPSurrogate`.
    best : float
        Best (lowest) value observed so far.
    xi : float, default=0.0
        Improvement margin: larger values explore more.

    Examples
    --------
    >>> class Toy:  # any model with predict(X) -> (mean, var)
    ...     def predict(self, X):
    ...         return X[:, 0], np.full(len(X), 0.25)
    >>> acq = ProbabilityOfImprovement(Toy(), best=0.5)
    >>> np.exp(acq.evaluate(np.array([[0.0], [0.5], [1.0]]))).round(4)  # PI itself
    array([0.8413, 0.5   , 0.1587])
    """

    def __init__(self, model, best, xi=0.0):
        super().__init__(model, best)
        self.xi = float(xi)

    def evaluate(self, X):
        mean, var = self.model.predict(X)
        return log_ndtr((self.best - self.xi - mean) / np.sqrt(var))

    def evaluate_with_gradient(self, X):
        z, dz, _, _ = self._moments_with_gradient(X, self.xi)
        value = log_ndtr(z)
        # d log Phi(z) / dz = phi(z) / Phi(z), in log space.
        return value, np.exp(-0.5 * z ** 2 - _LOG_SQRT_2PI - value)[:, None] * dz


class UpperConfidenceBound(_GPAcquisition):
    """``-(mu - beta * sigma)``: the negated lower confidence bound (minimisation).

    Parameters
    ----------
    model : object with ``predict(X) -> (mean, var)``
        The surrogate, e.g. a fitted :class:`GPSurrogate`.
    best : float, default=0.0
        Unused (kept so that every acquisition is built as ``cls(model, best)``).
    beta : float, default=2.0
        Weight of the standard deviation: larger values explore more.

    Examples
    --------
    >>> class Toy:  # any model with predict(X) -> (mean, var)
    ...     def predict(self, X):
    ...         return X[:, 0], np.full(len(X), 0.25)
    >>> acq = UpperConfidenceBound(Toy(), beta=2.0)
    >>> acq.evaluate(np.array([[0.0], [0.5]]))  # -(mean - 2 * 0.5)
    array([1. , 0.5])
    """

    def __init__(self, model, best=0.0, beta=2.0):
        super().__init__(model, best)
        self.beta = float(beta)

    def evaluate(self, X):
        mean, var = self.model.predict(X)
        return -(mean - self.beta * np.sqrt(var))

    def evaluate_with_gradient(self, X):
        mean, var, dmean, dvar = self._predict_with_gradient(X)
        sigma = np.sqrt(var)
        return -(mean - self.beta * sigma), -(dmean - self.beta * dvar / (2 * sigma[:, None]))


ACQUISITIONS = {"ei": LogExpectedImprovement, "pi": ProbabilityOfImprovement,
                "ucb": UpperConfidenceBound}
