"""Learning-curve extrapolation: predict the value at the final budget from a partial curve.

A few parametric families from Domhan, Springenberg and Hutter (2015), "Speeding up automatic
hyperparameter optimization of deep neural networks by extrapolation of learning curves", are
fitted by bounded least squares (:func:`scipy.optimize.curve_fit`) to the observed
``(budget, value)`` points, in normalised units (budget / final budget, values centred on the
last one and divided by their range). The prediction at the final budget is the average of the
families weighted by ``exp(-BIC / 2)``; its variance is, per family, the delta-method variance
of the extrapolated value (from the fitted covariance, which is scaled by the residuals) plus
the residual variance, and across families the spread of their predictions.

Too few points for any family (a family with ``k`` parameters needs ``k + 1`` points) gives
the last observed value with an infinite standard deviation: "cannot tell yet".
"""
import dataclasses
import math
import numbers
import warnings
from typing import Dict, Tuple

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ..exceptions import InvalidParameterError

__all__ = ["LearningCurveModel", "CurvePrediction", "CURVE_FAMILIES"]


def _pow3(x, c, a, alpha):
    return c + a * np.power(x, -alpha)


def _exp3(x, c, a, b):
    return c + a * np.exp(-b * x)


def _logpow4(x, c, a, b, k):
    return c + a / (1.0 + np.power(x / np.exp(b), k))


# name -> (function of normalised budget x in (0, 1], starting points, (lower, upper) bounds)
CURVE_FAMILIES: Dict[str, Tuple] = {
    "pow3": (_pow3, [(0.0, 0.1, 1.0), (-0.5, 0.5, 0.5)],
             ([-50.0, -50.0, 1e-3], [50.0, 50.0, 4.0])),
    "exp3": (_exp3, [(0.0, 1.0, 5.0), (-0.5, 1.0, 1.0)],
             ([-50.0, -50.0, 1e-3], [50.0, 50.0, 100.0])),
    "logpow4": (_logpow4, [(0.0, 1.0, -2.0, 1.0), (-0.5, 1.0, -1.0, 2.0)],
                ([-50.0, -50.0, -8.0, 0.1], [50.0, 50.0, 2.0, 8.0])),
}


@dataclasses.dataclass
class CurvePrediction:
    """Predicted value at the final budget: ``mean``, ``std`` (``inf`` when too few points),
    the weight of each family used (empty for the fallback) and ``n_points``.

    Returned by :meth:`LearningCurveModel.predict`; the fields are also its attributes.

    Parameters
    ----------
    mean : float
        Predicted value at the final budget (the last observed value when no family could
        be fitted).
    std : float
        Its standard deviation: within-family (delta method plus residual) and
        between-family spread; ``inf`` when too few points to fit any family.
    weights : dict of str to float
        Weight of each fitted family in the average (``exp(-BIC / 2)``, normalised to sum
        to 1); empty for the fallback.
    n_points : int
        Points of the partial curve the prediction used.

    Examples
    --------
    >>> t = np.arange(1, 10)
    >>> pred = LearningCurveModel().predict(t, 0.2 + np.exp(-t / 4), final_budget=27)
    >>> pred.n_points, sorted(pred.weights), round(sum(pred.weights.values()), 6)
    (9, ['exp3', 'logpow4', 'pow3'], 1.0)
    >>> LearningCurveModel().predict([1, 2], [1.0, 0.8], final_budget=27)
    CurvePrediction(mean=0.8, std=inf, weights={}, n_points=2)
    """

    mean: float
    std: float
    weights: Dict[str, float]
    n_points: int


def _check_curve(budgets, values, final_budget):
    b = np.asarray(budgets, dtype=float).ravel() if _all_numbers(budgets) else None
    v = np.asarray(values, dtype=float).ravel() if _all_numbers(values) else None
    if b is None or v is None:
        raise InvalidParameterError("budgets and values must be sequences of real numbers.")
    if len(b) != len(v) or len(b) == 0:
        raise InvalidParameterError(
            f"budgets and values must be non-empty and of equal length, got {len(b)} and "
            f"{len(v)}.")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(v))):
        raise InvalidParameterError("budgets and values must be finite.")
    if np.any(b <= 0) or np.any(np.diff(b) <= 0):
        raise InvalidParameterError(
            f"budgets must be positive and strictly increasing, got {b.tolist()}.")
    if (isinstance(final_budget, (bool, np.bool_))
            or not isinstance(final_budget, numbers.Real)
            or not math.isfinite(final_budget) or final_budget < b[-1]):
        raise InvalidParameterError(
            f"final_budget must be a real number >= the last budget {b[-1]}, got "
            f"{final_budget!r}.")
    return b, v, float(final_budget)


def _all_numbers(seq):
    try:
        items = list(seq)
    except TypeError:
        return False
    return all(isinstance(x, (numbers.Real, np.floating, np.integer))
               and not isinstance(x, (bool, np.bool_)) for x in items)


class LearningCurveModel:
    """Model-averaged parametric extrapolation of one learning curve.

    Parameters
    ----------
    families : sequence of str, default=('pow3', 'exp3', 'logpow4')
        Keys of :data:`CURVE_FAMILIES`.

    Examples
    --------
    >>> t = np.arange(1, 10)
    >>> pred = LearningCurveModel().predict(t, 0.2 + np.exp(-t / 4), final_budget=27)
    >>> round(pred.mean, 3)
    0.201
    >>> LearningCurveModel().predict([1, 2], [1.0, 0.8], final_budget=27).std
    inf
    """

    def __init__(self, families=("pow3", "exp3", "logpow4")):
        families = tuple(families)
        if not families:
            raise InvalidParameterError("families must name at least one curve family.")
        for name in families:
            if name not in CURVE_FAMILIES:
                raise InvalidParameterError(
                    f"Unknown curve family {name!r}; choose from {sorted(CURVE_FAMILIES)}.")
        self.families = families

    @property
    def min_points(self):
        """The fewest points for which some family is fitted (parameters + 1)."""
        return min(len(CURVE_FAMILIES[f][1][0]) for f in self.families) + 1

    def predict(self, budgets, values, final_budget) -> CurvePrediction:
        """Predict the value at ``final_budget`` from points observed at increasing
        ``budgets``."""
        b, v, final = _check_curve(budgets, values, final_budget)
        n = len(v)
        last = float(v[-1])
        if final == b[-1]:
            return CurvePrediction(last, 0.0, {}, n)
        scale = float(np.ptp(v))
        if scale <= 1e-12 * max(1.0, abs(last)):
            return CurvePrediction(last, 0.0 if n >= self.min_points else math.inf, {}, n)
        x = b / final
        y = (v - last) / scale
        fits = {}
        for name in self.families:
            fit = self._fit_family(name, x, y)
            if fit is not None:
                fits[name] = fit
        if not fits:
            return CurvePrediction(last, math.inf, {}, n)
        names = list(fits)
        bic = np.array([fits[f][2] for f in names])
        w = np.exp(-0.5 * (bic - bic.min()))
        w /= w.sum()
        means = np.array([fits[f][0] for f in names])
        variances = np.array([fits[f][1] for f in names])
        mean = float(np.sum(w * means))
        var = float(np.sum(w * (variances + (means - mean) ** 2)))
        return CurvePrediction(last + scale * mean, scale * math.sqrt(var),
                               {f: float(wi) for f, wi in zip(names, w)}, n)

    @staticmethod
    def _fit_family(name, x, y):
        """(prediction at x=1, its variance, BIC) in normalised units, or None."""
        func, starts, bounds = CURVE_FAMILIES[name]
        k = len(starts[0])
        n = len(x)
        if n <= k:
            return None
        best = None
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            for p0 in starts:
                try:
                    popt, pcov = curve_fit(func, x, y, p0=p0, bounds=bounds, max_nfev=200,
                                           ftol=1e-6, xtol=1e-6)
                except (RuntimeError, ValueError):
                    continue
                rss = float(np.sum((func(x, *popt) - y) ** 2))
                if np.isfinite(rss) and (best is None or rss < best[2]):
                    best = (popt, pcov, rss)
            if best is None:
                return None
            popt, pcov, rss = best
            pred = float(func(1.0, *popt))
            # Delta method: gradient of the prediction w.r.t. the parameters, central
            # differences scaled to each parameter's bound range.
            grad = np.empty(k)
            lo, hi = np.asarray(bounds[0]), np.asarray(bounds[1])
            for i in range(k):
                h = 1e-6 * (hi[i] - lo[i])
                up, dn = popt.copy(), popt.copy()
                up[i] = min(up[i] + h, hi[i])
                dn[i] = max(dn[i] - h, lo[i])
                grad[i] = (func(1.0, *up) - func(1.0, *dn)) / max(up[i] - dn[i], 1e-300)
            resid_var = rss / (n - k)
            var = float(grad @ pcov @ grad) if np.all(np.isfinite(pcov)) else math.inf
        if not np.isfinite(pred) or not np.isfinite(var) or var < 0:
            return None
        bic = n * math.log(rss / n + 1e-12) + k * math.log(n)
        return pred, var + resid_var, bic
