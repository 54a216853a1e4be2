"""Stochastic variational inference: one optimiser step on the ELBO per minibatch.

:class:`SVI` ties a model, a posterior, a prior and an estimator together as Pyro's ``SVI``
does: :meth:`SVI.step` refreshes the posterior's replicas, asks the estimator for the ELBO
and the surrogate losses, back-propagates them on every context, sums the gradients onto the
first context and applies one step of an MXNet optimiser there.
"""
import numbers

import mxnet as mx
from mxnet import autograd

from .._validation import check_choice
from ..exceptions import InvalidParameterError

__all__ = ["SVI", "OPTIMIZERS", "make_optimizer"]

#: Names accepted for ``optimizer`` (MXNet's optimiser registry).
OPTIMIZERS = tuple(sorted(name for name in mx.optimizer.Optimizer.opt_registry
                          if name != "test"))


def make_optimizer(name, learning_rate, grad_scale=1.0):
    """Create an MXNet optimiser by name, with ``rescale_grad=grad_scale``.

    Parameters
    ----------
    name : str
        One of :data:`OPTIMIZERS` (MXNet's registered optimisers, e.g. ``'adam'``).
    learning_rate : float
        Positive, finite step size.
    grad_scale : float, default=1.0
        Factor MXNet applies to every gradient before the update.

    Returns
    -------
    mxnet.optimizer.Optimizer
        A new optimiser.

    Raises
    ------
    InvalidParameterError
        For an unknown ``name`` or a learning rate that is not positive and finite.

    Examples
    --------
    >>> make_optimizer('adam', 0.01).learning_rate
    0.01
    """
    check_choice(name, "optimizer", OPTIMIZERS)
    if isinstance(learning_rate, (bool,)) or not isinstance(learning_rate, numbers.Real) \
            or not learning_rate > 0 or learning_rate == float("inf"):
        raise InvalidParameterError(
            f"learning_rate must be a positive finite number, got {learning_rate!r}; try "
            f"1e-2 for adam or 1e-1 for sgd.")
    return mx.optimizer.create(name, learning_rate=float(learning_rate),
                               rescale_grad=float(grad_scale))


class SVI:
    """Optimise a mean-field posterior by stochastic gradient steps on the ELBO.

    Parameters
    ----------
    model : Model
    posterior : MeanFieldNormal
    prior : Prior
    estimator : ReparamEstimator or ScoreFunctionEstimator
    optimizer : str, default='adam'
        Any name in :data:`OPTIMIZERS`.
    learning_rate : float, default=1e-2
    grad_scale : float, default=1.0
        Multiplies every gradient; ``1 / N`` optimises the ELBO per training sample, which
        keeps learning rates comparable to those of a deterministic network.

    Examples
    --------
    Fit ``q(w)`` to the posterior of one Gaussian mean (prior N(0, 1), one observation
    ``y = 2`` with unit noise: the exact posterior is N(1, 1/2)):

    >>> import mxnet as mx, numpy as np
    >>> from repurpose.bayes import (GaussianPrior, MeanFieldNormal, Model,
    ...                              ReparamEstimator)
    >>> class Mean(Model):
    ...     n_params = 1
    ...     def log_likelihood(self, F, x, y, w):
    ...         return -0.5 * F.sum(F.square(F.broadcast_sub(y, w))) - 0.9189385
    >>> q = MeanFieldNormal.from_init(np.zeros(1), init_scale=0.5)
    >>> svi = SVI(Mean(), q, GaussianPrior(1.0), ReparamEstimator(), learning_rate=0.05)
    >>> parts = [(mx.cpu(), mx.nd.zeros((1, 1)), mx.nd.array([2.0]))]
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(500):
    ...     _ = svi.step(parts, 1.0, rng, n_draws=16)
    >>> mean, std = q.to_numpy()[0][0], q.std_numpy()[0]
    >>> bool(abs(mean - 1.0) < 0.15), bool(abs(std - 0.5 ** 0.5) < 0.1)
    (True, True)
    """

    def __init__(self, model, posterior, prior, estimator, optimizer="adam",
                 learning_rate=1e-2, grad_scale=1.0):
        self.model = model
        self.posterior = posterior
        self.prior = prior
        self.estimator = estimator
        self.optimizer = make_optimizer(optimizer, learning_rate, grad_scale)
        self._updater = mx.optimizer.get_updater(self.optimizer)

    def step(self, parts, data_scale, rng, n_draws=1):
        """Take one optimiser step on a minibatch; return the estimator's ``Estimate``.

        Parameters
        ----------
        parts : list of (mx.Context, NDArray, NDArray)
            The minibatch split across the posterior's contexts.
        data_scale : float
            ``N / |B|``.
        rng : numpy.random.Generator
        n_draws : int, default=1
        """
        if len(self.posterior.contexts) > 1:
            self.posterior.broadcast()
        estimate = self.estimator.estimate(self.model, self.posterior, self.prior, parts,
                                           data_scale, rng, n_draws)
        autograd.backward(estimate.surrogates)
        grads = self.posterior.gradients(estimate.contexts)
        for index, (grad, weight) in enumerate(zip(grads, self.posterior.parameters())):
            self._updater(index, grad, weight)
        return estimate
