r"""The pieces every ELBO estimator shares: the model protocol, the estimate it returns and the
minibatch scaling of the likelihood.

For data :math:`D` of :math:`N` samples, the evidence lower bound of a posterior :math:`q` is

.. math:: \mathcal{L}(q) = \mathbb{E}_{q(w)}[\log p(D \mid w)] - \mathrm{KL}(q \| p).

On a minibatch :math:`B` it is estimated without bias by

.. math:: \hat{\mathcal{L}} = \frac{N}{|B|} \sum_{i \in B} \log p(y_i \mid x_i, w) -
          \mathrm{KL}(q \| p), \qquad w \sim q,

the likelihood scaled by :math:`N / |B|` and the KL term *not* scaled: it concerns the weights,
which every minibatch shares. (This is :math:`M` times the minibatch cost of Blundell et al.
2015, eq. 9, with :math:`\pi_i = 1/M` for :math:`M` minibatches; Pyro scales the likelihood
the same way with ``poutine.scale``.) :func:`minibatch_scale` is that factor.
"""
from abc import ABC, abstractmethod
from typing import List, NamedTuple

from .._validation import check_positive_int
from ..exceptions import CapabilityError, InvalidParameterError

__all__ = ["Model", "Estimate", "minibatch_scale", "check_parts", "total"]


def total(F, x):
    """Sum of the elements of the vector ``x``, shape (1,), for ``F`` = ``mx.nd`` or ``mx.sym``.

    Written as a dot product with ones: one BLAS call, about ten times faster on the CPU than
    MXNet's ``sum`` reduction over tens of thousands of weights.

    Examples
    --------
    >>> import mxnet as mx
    >>> total(mx.nd, mx.nd.array([1.0, 2.0, 3.5])).asnumpy()
    array([6.5], dtype=float32)
    """
    return F.dot(x, F.ones_like(x))


class Model(ABC):
    """A likelihood ``p(y | x, w)`` over a flat weight vector ``w``, written for ``F``.

    ``F`` is ``mx.nd`` or ``mx.sym``: estimators evaluate the model inside hybridized graphs.
    Subclasses that can propagate the posterior's means and variances through their linear
    layers set ``supports_local = True`` and implement :meth:`log_likelihood_local`, which
    the reparameterisation estimator uses for local reparameterisation.

    See Also
    --------
    BayesianMLP : the model the BNN head trains.

    Examples
    --------
    Softmax regression of 2 features on 3 classes; ``w`` holds the weights (3 x 2), then the
    biases:

    >>> import mxnet as mx
    >>> class SoftmaxRegression(Model):
    ...     n_params = 9
    ...     def log_likelihood(self, F, x, y, w):
    ...         W = F.reshape(F.slice(w, begin=(0,), end=(6,)), (3, 2))
    ...         logits = F.broadcast_add(F.dot(x, W, transpose_b=True),
    ...                                  F.slice(w, begin=(6,), end=(9,)))
    ...         return total(F, F.pick(F.log_softmax(logits), y))
    >>> model = SoftmaxRegression()
    >>> x, y = mx.nd.array([[1.0, 0.0], [0.0, 1.0]]), mx.nd.array([0, 2])
    >>> model.log_likelihood(mx.nd, x, y, mx.nd.zeros(model.n_params)).asnumpy()  # 2 log(1/3)
    array([-2.19722], dtype=float32)
    >>> model.supports_local
    False
    """

    #: Whether :meth:`log_likelihood_local` is available.
    supports_local = False

    @property
    @abstractmethod
    def n_params(self):
        """Length of the flat weight vector."""

    @abstractmethod
    def log_likelihood(self, F, x, y, w):
        """``sum_i log p(y_i | x_i, w)`` over the rows of ``x`` for one weight vector.

        Parameters
        ----------
        F : module
            ``mx.nd`` or ``mx.sym``.
        x, y : NDArray or Symbol
            Inputs and targets of a (part of a) minibatch.
        w : NDArray or Symbol of shape (n_params,)

        Returns
        -------
        NDArray or Symbol of shape (1,)
        """

    def local_noise_size(self, n_draws):
        """Standard-normal numbers per row that :meth:`log_likelihood_local` consumes."""
        raise CapabilityError(
            f"{type(self).__name__} has no local reparameterisation (supports_local is "
            f"False); use weight-space sampling.")

    def log_likelihood_local(self, F, x, y, loc, std, noise, n_draws):
        """Mean over ``n_draws`` of ``sum_i log p(y_i | x_i, .)``, sampling pre-activations.

        Local reparameterisation (Kingma, Salimans & Welling 2015): for a linear layer
        ``a = h W^T + b`` with independent Gaussian weights, ``a`` given ``h`` is Gaussian
        with mean ``h loc_W^T + loc_b`` and variance ``h^2 (std_W^2)^T + std_b^2``, so it is
        sampled directly, with independent noise for every row.

        Parameters
        ----------
        noise : NDArray or Symbol of shape (n_rows, local_noise_size(n_draws))
            Standard-normal numbers.
        """
        raise CapabilityError(
            f"{type(self).__name__} has no local reparameterisation (supports_local is "
            f"False); use weight-space sampling.")


class Estimate(NamedTuple):
    """What an estimator returns for one minibatch.

    A named tuple; the fields are also its attributes.

    Parameters
    ----------
    elbo : NDArray of shape (1,)
        Estimate of the full-data ELBO (to report; not differentiated).
    log_likelihood : NDArray of shape (1,)
        Estimate of ``E_q[log p(D | w)]``: the minibatch log-likelihood times ``N / |B|``.
    kl : NDArray of shape (1,)
        ``KL(q || p)``, analytic or a Monte-Carlo estimate; not scaled.
    surrogates : list of NDArray
        Losses to differentiate (``mx.autograd.backward(surrogates)``), one per context
        used; their gradient is an unbiased estimate of minus the ELBO's gradient.
    contexts : list of mx.Context
        The context of each surrogate, for summing gradients.

    Examples
    --------
    >>> import mxnet as mx
    >>> import numpy as np
    >>> from repurpose.bayes import (BayesianMLP, GaussianPrior, MeanFieldNormal,
    ...                              ReparamEstimator)
    >>> model = BayesianMLP((2, 3))
    >>> posterior = MeanFieldNormal.from_init(np.zeros(model.n_params), init_scale=0.1)
    >>> x, y = mx.nd.array([[1.0, 0.0], [0.0, 1.0]]), mx.nd.array([0, 2])
    >>> est = ReparamEstimator().estimate(model, posterior, GaussianPrior(1.0),
    ...                                   [(mx.cpu(), x, y)], data_scale=5.0,
    ...                                   rng=np.random.default_rng(0))
    >>> bool(np.allclose(est.elbo.asnumpy(), (est.log_likelihood - est.kl).asnumpy()))
    True
    >>> len(est.surrogates), est.contexts
    (1, [cpu(0)])
    """

    elbo: object
    log_likelihood: object
    kl: object
    surrogates: List[object]
    contexts: List[object]


def minibatch_scale(n_total, n_batch):
    """Return ``N / |B|``, the factor of the minibatch log-likelihood in the ELBO estimate.

    Parameters
    ----------
    n_total : int
        Number of training samples ``N``.
    n_batch : int
        Number of samples in the minibatch ``|B|``, at most ``n_total``.

    Returns
    -------
    float
        ``n_total / n_batch``; the KL term is not scaled.

    Raises
    ------
    InvalidParameterError
        If either count is not a positive int or ``n_batch > n_total``.

    Examples
    --------
    >>> minibatch_scale(1000, 50)
    20.0
    """
    n_total = check_positive_int(n_total, "n_total")
    n_batch = check_positive_int(n_batch, "n_batch")
    if n_batch > n_total:
        raise InvalidParameterError(
            f"A minibatch of {n_batch} samples is larger than the data ({n_total} samples); "
            f"use at most n_total samples per batch.")
    return n_total / n_batch


def check_parts(parts, posterior):
    """Check that ``parts`` is a non-empty list of ``(ctx, x, y)`` on the posterior's contexts.

    The first part must sit on the posterior's first context: that part also carries the
    KL term, so it is counted once however the batch is split.
    """
    if not parts:
        raise InvalidParameterError(
            "parts is empty; pass at least one (ctx, x, y) part of a minibatch.")
    if parts[0][0] != posterior.contexts[0]:
        raise InvalidParameterError(
            f"The first part of the minibatch is on {parts[0][0]}, but the posterior's first "
            f"context is {posterior.contexts[0]}; split batches with "
            f"repurpose.context.split_batch(batch, posterior.contexts).")
    for ctx, x, y in parts:
        if ctx not in posterior.contexts:
            raise InvalidParameterError(
                f"A part of the minibatch is on {ctx}, where the posterior has no replica "
                f"(contexts: {posterior.contexts}).")
        if x.shape[0] != y.shape[0]:
            raise InvalidParameterError(
                f"A part of the minibatch has {x.shape[0]} inputs but {y.shape[0]} targets; "
                f"split x and y alike.")
