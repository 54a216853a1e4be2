"""Priors over a flat vector of network weights: elementwise Gaussian and Laplace densities.

Every function takes ``F`` first (``mx.nd`` or ``mx.sym``), so the same code runs eagerly and
inside a hybridized graph. ``scale`` may be one number for every weight or an array of the
weights' shape (a per-layer scale, for example); inside a symbolic graph an array scale is
passed as an input of the graph.

A Gaussian prior has a closed-form KL divergence from the mean-field posterior
(:meth:`GaussianPrior.kl_normal`); the Laplace prior does not offer one, and the estimators fall
back to a Monte-Carlo estimate ``log q(w) - log p(w)`` at a posterior draw -- the split between
Pyro's ``TraceMeanField_ELBO`` and ``Trace_ELBO``.
"""
import math
import numbers
from abc import ABC, abstractmethod

import mxnet as mx
import numpy as np

from .._validation import brief_list, check_choice
from ..exceptions import CapabilityError, InvalidParameterError
from .elbo import total

__all__ = ["Prior", "GaussianPrior", "LaplacePrior", "PRIORS", "make_prior"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_scale(scale, where):
    """Return ``scale`` as a float or a float32 array; raise unless positive and finite."""
    if isinstance(scale, (bool, np.bool_)):
        raise InvalidParameterError(f"{where} must be a positive number, got {scale!r}.")
    if isinstance(scale, numbers.Real):
        value = float(scale)
        if not (math.isfinite(value) and value > 0):
            raise InvalidParameterError(
                f"{where} must be a positive finite number, got {scale!r}. Pass for example "
                f"1.0 (weak prior) or 0.1 (strong shrinkage).")
        return value
    try:
        array = np.asarray(scale, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"{where} must be a positive number or an array of them, got "
            f"{type(scale).__name__}.") from err
    if array.size == 0 or not (np.isfinite(array).all() and (array > 0).all()):
        bad = array[~(np.isfinite(array) & (array > 0))].tolist() if array.size else []
        raise InvalidParameterError(
            f"{where} must hold positive finite numbers; got {array.size} value(s), bad ones: "
            f"{brief_list(bad) or 'empty array'}.")
    return array


class Prior(ABC):
    """An elementwise prior ``p(w) = prod_i p(w_i; scale_i)`` over a flat weight vector.

    Parameters
    ----------
    scale : float or ndarray, default=1.0
        Positive scale: one number for every weight, or an array with the weights' shape.

    Raises
    ------
    InvalidParameterError
        If ``scale`` is not positive and finite (every element of an array).

    Examples
    --------
    A prior implements :meth:`log_prob`; without :meth:`kl_normal` the estimators use a
    Monte-Carlo KL. A heavy-tailed Cauchy prior (float scale only, for brevity):

    >>> class CauchyPrior(Prior):
    ...     name = 'cauchy'
    ...     def log_prob(self, F, w, scale=None):
    ...         scale = self.scale if scale is None else scale
    ...         return -F.log1p(F.square(w / scale)) - F.log(math.pi * scale * F.ones_like(w))
    >>> prior = CauchyPrior(scale=1.0)
    >>> prior.log_prob(mx.nd, mx.nd.array([0.0, 1.0])).asnumpy()  # -log(pi), -log(2 pi)
    array([-1.14473  , -1.8378772], dtype=float32)
    >>> prior, prior.has_analytic_kl
    (CauchyPrior(scale=1.0), False)
    """

    #: Whether :meth:`kl_normal` gives the KL divergence from a Gaussian in closed form.
    has_analytic_kl = False
    #: Name used by :func:`make_prior` and in saved models.
    name = None

    def __init__(self, scale=1.0):
        self.scale = _check_scale(scale, f"{type(self).__name__} scale")

    def __repr__(self):
        shown = self.scale if isinstance(self.scale, float) else f"array{self.scale.shape}"
        return f"{type(self).__name__}(scale={shown})"

    def scale_array(self, n_params):
        """Return the scale as a float32 array of shape ``(n_params,)``."""
        if isinstance(self.scale, float):
            return np.full(n_params, self.scale, dtype=np.float32)
        if self.scale.size != n_params and self.scale.size != 1:
            raise InvalidParameterError(
                f"{type(self).__name__} has {self.scale.size} scales but the posterior has "
                f"{n_params} weights; give one scale or one per weight.")
        return np.broadcast_to(self.scale.reshape(-1), (n_params,)).astype(np.float32)

    def _scale(self, F, like, scale):
        if scale is not None:
            return scale
        if isinstance(self.scale, float):
            return self.scale
        if F is mx.nd:
            return mx.nd.array(self.scale, ctx=like.context, dtype=like.dtype)
        raise InvalidParameterError(
            f"{type(self).__name__} has an array scale: inside a symbolic graph pass it as "
            f"the `scale` argument (a graph input).")

    @abstractmethod
    def log_prob(self, F, w, scale=None):
        """Elementwise log density ``log p(w_i)``.

        Parameters
        ----------
        F : module
            ``mx.nd`` or ``mx.sym``.
        w : NDArray or Symbol
            Weights.
        scale : float, NDArray or Symbol, default=None
            Overrides :attr:`scale` (needed for array scales inside a symbolic graph).
        """

    def kl_normal(self, F, loc, std, scale=None):
        """Elementwise ``KL(N(loc, std^2) || p)`` in closed form, where the prior has one.

        Priors with ``has_analytic_kl = False`` raise ``CapabilityError``; estimators then
        use the Monte-Carlo estimate ``log q(w) - log p(w)`` instead.
        """
        raise CapabilityError(
            f"{type(self).__name__} has no closed-form KL divergence from a Gaussian here; "
            f"use a Monte-Carlo estimate of log q(w) - log p(w) (has_analytic_kl is False).")

    # The summed forms used inside the estimators' graphs. Whatever depends on the scale only
    # is computed once, in numpy, by graph_inputs and fed to the graph as constant inputs.
    def graph_inputs(self, n_params):
        """Constant float32 arrays that :meth:`log_prob_sum` and :meth:`kl_normal_sum` take."""
        return [self.scale_array(n_params)]

    def log_prob_sum(self, F, w, *inputs):
        """``sum_i log p(w_i)``, shape (1,), with ``inputs`` from :meth:`graph_inputs`."""
        return total(F, self.log_prob(F, w, inputs[0]))

    def kl_normal_sum(self, F, loc, std, *inputs):
        """``sum_i KL(N(loc_i, std_i^2) || p)``, shape (1,), with ``inputs`` from
        :meth:`graph_inputs`."""
        return total(F, self.kl_normal(F, loc, std, inputs[0]))


class GaussianPrior(Prior):
    r"""Zero-mean Gaussian prior ``N(0, scale^2)`` on every weight (L2 weight decay).

    The KL divergence from a Gaussian ``q = N(m, s^2)`` has the closed form

    .. math:: \mathrm{KL}(q \| p) = \log\frac{\sigma_p}{s} + \frac{s^2 + m^2}{2\sigma_p^2}
              - \frac12 .

    Parameters
    ----------
    scale : float or ndarray, default=1.0
        Positive scale (the standard deviation): one number for every weight, or an array
        with the weights' shape.

    Examples
    --------
    >>> import mxnet as mx
    >>> prior = GaussianPrior(2.0)
    >>> float(prior.kl_normal(mx.nd, mx.nd.array([0.0]), mx.nd.array([2.0])).asscalar())
    0.0
    """

    has_analytic_kl = True
    name = "gaussian"

    def log_prob(self, F, w, scale=None):
        scale = self._scale(F, w, scale)
        log_scale = math.log(scale) if isinstance(scale, float) else F.log(scale)
        return -0.5 * F.square(w / scale) - log_scale - 0.5 * _LOG_2PI

    def kl_normal(self, F, loc, std, scale=None):
        scale = self._scale(F, loc, scale)
        log_scale = math.log(scale) if isinstance(scale, float) else F.log(scale)
        variance = scale * scale if isinstance(scale, float) else F.square(scale)
        return log_scale - F.log(std) + (F.square(std) + F.square(loc)) / (2.0 * variance) - 0.5

    def graph_inputs(self, n_params):
        scale = self.scale_array(n_params).astype(np.float64)
        sum_log_scale = float(np.log(scale).sum())
        return [(0.5 / scale**2).astype(np.float32),
                np.array([sum_log_scale - 0.5 * n_params], dtype=np.float32),  # KL constant
                np.array([-sum_log_scale - 0.5 * n_params * _LOG_2PI], dtype=np.float32)]

    def log_prob_sum(self, F, w, half_precision, kl_constant, log_prob_constant):
        return log_prob_constant - F.dot(F.square(w), half_precision)

    def kl_normal_sum(self, F, loc, std, half_precision, kl_constant, log_prob_constant):
        return (kl_constant - total(F, F.log(std))
                + F.dot(F.square(std) + F.square(loc), half_precision))


class LaplacePrior(Prior):
    r"""Zero-mean Laplace prior ``p(w) = exp(-|w| / b) / (2 b)`` with ``b = scale``.

    The maximum-a-posteriori view of this prior is L1 weight decay with strength ``1 / b``
    (per training set): it pulls small weights to zero harder than a Gaussian of the same
    scale and large ones less. Its KL divergence from the posterior is estimated by Monte
    Carlo (``has_analytic_kl = False``).

    Parameters
    ----------
    scale : float or ndarray, default=1.0
        Positive scale (``b``): one number for every weight, or an array
        with the weights' shape.

    Examples
    --------
    >>> import mxnet as mx
    >>> prior = LaplacePrior(0.5)
    >>> round(float(prior.log_prob(mx.nd, mx.nd.array([1.0])).asscalar()), 4)
    -2.0
    """

    name = "laplace"

    def log_prob(self, F, w, scale=None):
        scale = self._scale(F, w, scale)
        log_2scale = math.log(2.0 * scale) if isinstance(scale, float) else F.log(2.0 * scale)
        return -F.abs(w) / scale - log_2scale

    def graph_inputs(self, n_params):
        scale = self.scale_array(n_params).astype(np.float64)
        return [(1.0 / scale).astype(np.float32),
                np.array([-np.log(2.0 * scale).sum()], dtype=np.float32)]

    def log_prob_sum(self, F, w, inverse_scale, constant):
        return constant - F.dot(F.abs(w), inverse_scale)


#: The priors by name, as the ``prior`` parameter of :class:`repurpose.heads.BnnHead` names them.
PRIORS = {cls.name: cls for cls in (GaussianPrior, LaplacePrior)}


def make_prior(name, scale=1.0):
    """Build a prior from its name.

    Parameters
    ----------
    name : {'gaussian', 'laplace'}
    scale : float or ndarray, default=1.0

    Returns
    -------
    Prior

    Examples
    --------
    >>> make_prior('laplace', 0.1)
    LaplacePrior(scale=0.1)
    """
    check_choice(name, "prior", tuple(PRIORS))
    return PRIORS[name](scale)
