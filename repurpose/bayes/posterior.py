"""The mean-field Gaussian posterior ``q(w) = prod_i N(w_i | loc_i, softplus(rho_i)^2)``.

The variational parameters are two flat float32 vectors, ``loc`` and the raw scale ``rho``
(the standard deviation is ``softplus(rho)``, positive without constraints, as in Pyro's
``AutoNormal``). They live on the first context; data-parallel training keeps a replica on
every other context, refreshed by :meth:`MeanFieldNormal.broadcast` before each step, and
:meth:`MeanFieldNormal.gradients` sums the replicas' gradients back onto the first context.

The static methods take ``F`` (``mx.nd`` or ``mx.sym``) so estimators can use them inside a
hybridized graph.
"""
import math
import numbers

import mxnet as mx
import numpy as np

from ..exceptions import InvalidParameterError

__all__ = ["MeanFieldNormal", "sample_mean_field", "softplus", "inverse_softplus"]

_LOG_2PI = math.log(2.0 * math.pi)


def softplus(x):
    """``log(1 + exp(x))`` in numpy, stable for large ``|x|``.

    Parameters
    ----------
    x : float or ndarray
        Any real values.

    Returns
    -------
    float or ndarray
        Positive values of the same shape.

    Examples
    --------
    >>> float(softplus(0.0)) == np.log(2.0)
    True
    """
    return np.logaddexp(0.0, x)


def inverse_softplus(y):
    """The ``x`` with ``softplus(x) == y`` for ``y > 0``, stable for small and large ``y``.

    Parameters
    ----------
    y : float or array-like
        Positive values.

    Returns
    -------
    ndarray
        float64 values of the same shape.

    Examples
    --------
    >>> float(np.round(softplus(inverse_softplus(1e-3)), 12))
    0.001
    """
    y = np.asarray(y, dtype=np.float64)
    return y + np.log(-np.expm1(-y))


class MeanFieldNormal:
    """Fully factorised Gaussian over a flat vector of ``n_params`` weights.

    Parameters
    ----------
    loc : array-like of shape (n_params,)
        Initial means.
    raw_scale : array-like of shape (n_params,) or float
        Initial raw scales ``rho``; the standard deviations are ``softplus(rho)``.
    contexts : list of mx.Context, default=None
        Where the parameters live (first context) and are replicated (the others);
        ``None`` means ``[mx.cpu()]``.

    Attributes
    ----------
    contexts : list of mx.Context
    n_params : int

    Examples
    --------
    >>> q = MeanFieldNormal.from_init(np.zeros(3), init_scale=0.5)
    >>> q.std_numpy().round(6).tolist()
    [0.5, 0.5, 0.5]
    """

    def __init__(self, loc, raw_scale, contexts=None):
        loc = np.asarray(loc, dtype=np.float32).reshape(-1)
        raw = np.broadcast_to(np.asarray(raw_scale, dtype=np.float32), loc.shape).copy()
        if not (np.isfinite(loc).all() and np.isfinite(raw).all()):
            raise InvalidParameterError(
                "MeanFieldNormal got non-finite initial loc or raw_scale values; pass finite "
                "numbers.")
        self.contexts = list(contexts) if contexts else [mx.cpu()]
        self.n_params = int(loc.size)
        self._loc, self._raw = [], []
        for ctx in self.contexts:
            for store, value in ((self._loc, loc), (self._raw, raw)):
                array = mx.nd.array(value, ctx=ctx, dtype=np.float32)
                array.attach_grad()
                store.append(array)
        self._index = {ctx: i for i, ctx in enumerate(self.contexts)}

    @classmethod
    def from_init(cls, loc, init_scale=1e-3, contexts=None):
        """Build the posterior with means ``loc`` and every standard deviation ``init_scale``.

        A small ``init_scale`` starts training close to a deterministic network, which keeps
        the first steps' gradient noise low (Blundell et al. 2015; Pyro's ``AutoNormal``
        uses 0.1 for the same reason).
        """
        if isinstance(init_scale, (bool, np.bool_)) or not isinstance(init_scale, numbers.Real) \
                or not (math.isfinite(init_scale) and init_scale > 0):
            raise InvalidParameterError(
                f"init_scale must be a positive finite number, got {init_scale!r}; 1e-3 starts "
                f"close to a deterministic network.")
        return cls(loc, float(inverse_softplus(init_scale)), contexts)

    # ------------------------------------------------------------------ parameters
    def _at(self, store, ctx):
        if ctx is None:
            return store[0]
        try:
            return store[self._index[ctx]]
        except KeyError:
            raise InvalidParameterError(
                f"The posterior lives on {self.contexts}, not on {ctx}.") from None

    def loc(self, ctx=None):
        """Means as an NDArray on ``ctx`` (default: the first context)."""
        return self._at(self._loc, ctx)

    def raw_scale(self, ctx=None):
        """Raw scales ``rho`` as an NDArray on ``ctx`` (default: the first context)."""
        return self._at(self._raw, ctx)

    def parameters(self):
        """The variational parameters ``[loc, raw_scale]`` on the first context."""
        return [self._loc[0], self._raw[0]]

    def broadcast(self):
        """Copy the parameters of the first context onto every replica."""
        for store in (self._loc, self._raw):
            for replica in store[1:]:
                store[0].copyto(replica)

    def gradients(self, contexts):
        """Gradients ``[d loc, d raw_scale]`` summed over ``contexts``, on the first context.

        Parameters
        ----------
        contexts : list of mx.Context
            The contexts whose copies took part in the last backward pass.
        """
        indices = sorted({self._index[ctx] for ctx in contexts})
        if indices == [0]:
            return [self._loc[0].grad, self._raw[0].grad]
        main = self.contexts[0]
        grads = []
        for store in (self._loc, self._raw):
            total = None
            for i in indices:
                grad = store[i].grad.as_in_context(main)
                total = grad if total is None else total + grad
            grads.append(total)
        return grads

    def to_numpy(self):
        """Return ``(loc, raw_scale)`` as float32 numpy arrays."""
        return self._loc[0].asnumpy(), self._raw[0].asnumpy()

    def std_numpy(self):
        """Standard deviations ``softplus(raw_scale)`` as a numpy array."""
        return softplus(self._raw[0].asnumpy()).astype(np.float32)

    # ------------------------------------------------------------------ densities (F-generic)
    @staticmethod
    def std(F, raw_scale):
        """Standard deviation ``softplus(raw_scale)``."""
        return F.Activation(raw_scale, act_type="softrelu")

    @staticmethod
    def rsample(F, loc, std, noise):
        """Reparameterised draw ``loc + std * noise`` for standard-normal ``noise``."""
        return loc + std * noise

    @staticmethod
    def log_prob(F, w, loc, std):
        """Elementwise ``log N(w | loc, std^2)``."""
        return -0.5 * F.square((w - loc) / std) - F.log(std) - 0.5 * _LOG_2PI

    @staticmethod
    def entropy(F, std):
        """Elementwise entropy ``log(std) + (1 + log 2 pi) / 2``."""
        return F.log(std) + 0.5 * (1.0 + _LOG_2PI)

    def sample_numpy(self, n_draws, rng, dtype=np.float64):
        """Draw ``n_draws`` weight vectors with the numpy ``Generator`` ``rng``.

        Returns
        -------
        ndarray of shape (n_draws, n_params)
        """
        loc, raw = self.to_numpy()
        return sample_mean_field(loc, raw, n_draws, rng, dtype)


def sample_mean_field(loc, raw_scale, n_draws, rng, dtype=np.float64):
    """Draw ``loc + softplus(raw_scale) * eps`` with ``eps`` from the numpy ``Generator`` ``rng``.

    The standard-normal ``eps`` are drawn in float32 whatever ``dtype``, so the same ``rng``
    gives the same draws in float32 and float64.

    Parameters
    ----------
    loc : array-like of shape (n_params,)
        Posterior means.
    raw_scale : array-like of shape (n_params,)
        Unconstrained scales; the standard deviations are ``softplus(raw_scale)``.
    n_draws : int
        Number of weight vectors to draw.
    rng : numpy.random.Generator
        Source of the noise.
    dtype : numpy dtype, default=np.float64
        Dtype of the result.

    Returns
    -------
    ndarray of shape (n_draws, n_params)

    Examples
    --------
    >>> w = sample_mean_field([0.0, 10.0], inverse_softplus(np.array([1.0, 0.01])), 20000,
    ...                       np.random.default_rng(0))
    >>> w.shape, w.mean(axis=0).round(1), w.std(axis=0).round(2)
    ((20000, 2), array([ 0., 10.]), array([1.  , 0.01]))
    """
    loc = np.asarray(loc, dtype=dtype)
    std = softplus(np.asarray(raw_scale, dtype=dtype))
    eps = rng.standard_normal((n_draws, loc.size), dtype=np.float32).astype(dtype)
    return loc[None, :] + std[None, :] * eps
