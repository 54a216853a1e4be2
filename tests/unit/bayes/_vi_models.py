"""Tiny models with closed forms for the VI tests (imported by the test modules here).

``Quadratic``: ``log p = -1/2 sum_j c_j (w_j - a_j)^2 - offset`` (``x`` carries ``c``, ``y``
carries ``a``), so ``E_q[log p] = -1/2 sum_j c_j ((m_j - a_j)^2 + s_j^2) - offset``.

``LinearGaussian``: ``y_i = x_i . w + noise``, noise N(0, sigma^2) known: Bayesian linear
regression, with local reparameterisation (``x_i . w`` is Gaussian under q).
"""
import math

import mxnet as mx
import numpy as np

from repurpose.bayes import Model


class Quadratic(Model):
    def __init__(self, n_params, offset=0.0):
        self._n = n_params
        self.offset = offset

    @property
    def n_params(self):
        return self._n

    def log_likelihood(self, F, x, y, w):
        return -0.5 * F.sum(x * F.square(w - y)) - self.offset

    @staticmethod
    def expected(loc, std, a, c, offset=0.0):
        """Closed-form E_q[log p] and its gradients with respect to loc and raw scale."""
        value = -0.5 * np.sum(c * ((loc - a) ** 2 + std**2)) - offset
        d_loc = -c * (loc - a)
        d_std = -c * std
        return value, d_loc, d_std


class LinearGaussian(Model):
    supports_local = True

    def __init__(self, n_features, noise_std):
        self._n = n_features
        self.noise_var = noise_std**2
        self._log_norm = 0.5 * math.log(2 * math.pi * self.noise_var)

    @property
    def n_params(self):
        return self._n

    def log_likelihood(self, F, x, y, w):
        pred = F.dot(x, w)
        return F.sum(-0.5 * F.square(y - pred) / self.noise_var - self._log_norm)

    def local_noise_size(self, n_draws):
        return n_draws

    def log_likelihood_local(self, F, x, y, loc, std, noise, n_draws):
        mean = F.reshape(F.dot(x, loc), shape=(-1, 1))
        sd = F.reshape(F.sqrt(F.dot(F.square(x), F.square(std))), shape=(-1, 1))
        a = F.broadcast_add(mean, F.broadcast_mul(sd, noise))
        resid = F.broadcast_sub(F.reshape(y, shape=(-1, 1)), a)
        return F.sum(-0.5 * F.square(resid) / self.noise_var - self._log_norm) / n_draws

    def expected(self, X, y, loc, std):
        """Closed-form E_q[log p(y | X, w)] and its gradients (loc, std)."""
        resid = y - X @ loc
        value = np.sum(-0.5 * (resid**2 + (X**2) @ std**2) / self.noise_var - self._log_norm)
        d_loc = X.T @ resid / self.noise_var
        d_std = -((X**2).sum(axis=0)) * std / self.noise_var
        return value, d_loc, d_std

    def exact_posterior(self, X, y, prior_std):
        """Posterior mean, covariance and precision of w under the prior N(0, prior_std^2 I)."""
        precision = X.T @ X / self.noise_var + np.eye(X.shape[1]) / prior_std**2
        cov = np.linalg.inv(precision)
        return cov @ X.T @ y / self.noise_var, cov, precision


def one_part(x, y, dtype=np.float32):
    """The minibatch as a single part on cpu(0)."""
    return [(mx.cpu(0), mx.nd.array(x, dtype=dtype), mx.nd.array(y, dtype=dtype))]
