"""The mixed-space kernel of :class:`~repurpose.bo.GPSurrogate` and its hyper-parameter fit.

``k(x, x') = M(o, o') (a + s R'(c, c')) + b R(c, c')``: Matern-5/2 ``M`` (ARD) over the
ordinal columns ``o`` (reals and integers), squared-exponential ``R``, ``R'`` (ARD) over the
one-hot columns ``c`` of the categorical parameters. ``a M`` is shared by every category,
``s M R'`` lets categories differ, ``b R`` shifts their levels: the sum-and-product form of
Ru et al. (2020, CoCaBO) with one set of ordinal length-scales for both ordinal terms (on
the benchmark's mixed spaces a second set fitted worse, 10 seeds each).

Written in numpy rather than composed from GPy's kernels: GPy's sum and product of four
kernels spend most of a fit in its parameter bookkeeping (about 1 s per suggestion at 100
observations, 4x the single-kernel fit); this fit computes the marginal likelihood and its
gradient in a few array operations and is as fast as the single-kernel one.
"""
import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize as scipy_minimize

_SQRT5 = float(np.sqrt(5.0))
_VARIANCE_BOUNDS = (1e-2, 1e2)
_LENGTHSCALE_BOUNDS = (1e-2, 1e2)
_MAX_ITERS = 200


def scaled_differences(A, B, lengthscale):
    """Scaled squared differences ``((A_i - B_j) / l)^2`` of shape (n, m, d)."""
    diff = (A[:, None, :] - B[None, :, :]) / lengthscale
    return diff * diff


def matern52(A, B, lengthscale, gradient=False):
    """Unit-variance Matern-5/2 matrix between rows of ``A`` (n, d) and ``B`` (m, d); with
    ``gradient`` also dk/dA of shape (n, m, d)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    if gradient:
        diff = (A[:, None, :] - B[None, :, :]) / lengthscale
        r = np.sqrt(np.einsum("nmd,nmd->nm", diff, diff))
    else:  # the expanded square: one matrix product for thousands of candidates
        As, Bs = A / lengthscale, B / lengthscale
        r2 = (np.einsum("nd,nd->n", As, As)[:, None] + np.einsum("md,md->m", Bs, Bs)[None, :]
              - 2.0 * As @ Bs.T)
        r = np.sqrt(np.maximum(r2, 0.0))
    e = np.exp(-_SQRT5 * r)
    K = (1.0 + _SQRT5 * r + 5.0 / 3.0 * r ** 2) * e
    if not gradient:
        return K, None
    return K, (-5.0 / 3.0 * (1.0 + _SQRT5 * r) * e)[:, :, None] * (diff / lengthscale)


def rbf(A, B, lengthscale, gradient=False):
    """Unit-variance squared-exponential matrix, and with ``gradient`` dk/dA (n, m, d)."""
    A, B = np.asarray(A, float), np.asarray(B, float)
    diff = (A[:, None, :] - B[None, :, :]) / lengthscale
    K = np.exp(-0.5 * np.einsum("nmd,nmd->nm", diff, diff))
    if not gradient:
        return K, None
    return K, -K[:, :, None] * (diff / lengthscale)


class MixedKernel:
    """Hyper-parameters of the mixed kernel, and the kernel matrix with its gradients.

    Parameters
    ----------
    ordinal, categorical : array of int
        Column indices of the ordinal and the one-hot columns.
    theta : array, optional
        Log hyper-parameters: ``log a, log l_o (p), log b, log l_c (q), log s, log l_c' (q)``
        for ``p`` ordinal and ``q`` one-hot columns.
    """

    def __init__(self, ordinal, categorical, theta=None):
        self.ordinal = np.asarray(ordinal, dtype=int)
        self.categorical = np.asarray(categorical, dtype=int)
        p, q = len(self.ordinal), len(self.categorical)
        self.n_theta = 3 + p + 2 * q
        self._slices = {}
        start = 0
        for name, size in (("a", 1), ("l_o", p), ("b", 1), ("l_c", q), ("s", 1),
                           ("l_cx", q)):
            self._slices[name] = slice(start, start + size)
            start += size
        self.theta = np.zeros(self.n_theta) if theta is None else np.asarray(theta, float)

    def get(self, name):
        """The hyper-parameter ``name`` (not its log): a float or an array."""
        value = np.exp(self.theta[self._slices[name]])
        return float(value[0]) if name in ("a", "b", "s") else value

    def set(self, name, value):
        self.theta[self._slices[name]] = np.log(value)

    def bounds(self):
        """Bounds of theta for L-BFGS-B."""
        out = []
        for name, sl in self._slices.items():
            lo, hi = _VARIANCE_BOUNDS if name in ("a", "b", "s") else _LENGTHSCALE_BOUNDS
            out.extend([(np.log(lo), np.log(hi))] * (sl.stop - sl.start))
        return out

    @property
    def ordinal_lengthscales(self):
        """The slice of theta the length-scale prior applies to."""
        return self._slices["l_o"]

    @property
    def prior_variance(self):
        """k(x, x): the same for every x."""
        return self.get("a") + self.get("b") + self.get("s")  # M = R = R' = 1 at r = 0

    def matrix(self, A, B, gradient=False):
        """K(A, B) (n, m), and with ``gradient`` dK/dA of shape (n, m, d)."""
        o, c = self.ordinal, self.categorical
        M, dM = matern52(A[:, o], B[:, o], self.get("l_o"), gradient)
        R, dR = rbf(A[:, c], B[:, c], self.get("l_c"), gradient)
        Rx, dRx = rbf(A[:, c], B[:, c], self.get("l_cx"), gradient)
        a, b, s = self.get("a"), self.get("b"), self.get("s")
        weight = a + s * Rx
        K = M * weight + b * R
        if not gradient:
            return K, None
        dK = np.zeros(K.shape + (A.shape[1],))
        dK[:, :, o] = weight[:, :, None] * dM
        dK[:, :, c] = b * dR + s * M[:, :, None] * dRx
        return K, dK

    def matrix_and_theta_gradients(self, X):
        """K(X, X) and dK/dtheta (n_theta, n, n)."""
        o, c = self.ordinal, self.categorical
        Do = scaled_differences(X[:, o], X[:, o], self.get("l_o"))
        Dc = scaled_differences(X[:, c], X[:, c], self.get("l_c"))
        Dcx = scaled_differences(X[:, c], X[:, c], self.get("l_cx"))
        a, b, s = self.get("a"), self.get("b"), self.get("s")
        r = np.sqrt(Do.sum(axis=2))
        e = np.exp(-_SQRT5 * r)
        M = (1.0 + _SQRT5 * r + 5.0 / 3.0 * r ** 2) * e
        # dM/dlog l_j = 5/3 (1 + sqrt5 r) exp(-sqrt5 r) (x_j - x'_j)^2 / l_j^2
        dM = (5.0 / 3.0 * (1.0 + _SQRT5 * r) * e)[:, :, None] * Do
        R = np.exp(-0.5 * Dc.sum(axis=2))
        Rx = np.exp(-0.5 * Dcx.sum(axis=2))
        weight = a + s * Rx
        K = M * weight + b * R
        grads = np.empty((self.n_theta,) + K.shape)
        sl = self._slices
        grads[sl["a"]] = a * M
        grads[sl["l_o"]] = np.moveaxis(weight[:, :, None] * dM, 2, 0)
        grads[sl["b"]] = b * R
        grads[sl["l_c"]] = np.moveaxis(b * R[:, :, None] * Dc, 2, 0)
        grads[sl["s"]] = s * M * Rx
        grads[sl["l_cx"]] = np.moveaxis(s * (M * Rx)[:, :, None] * Dcx, 2, 0)
        return K, grads


def negative_log_posterior(params, kernel, X, y, prior):
    """-log marginal likelihood - log prior of the ordinal length-scales, and its gradient,
    at ``params = (theta, log noise)``; ``prior`` is a GPy prior object (``lnpdf`` and
    ``lnpdf_grad`` of the length-scale itself, as GPy's MAP fit uses it) or None."""
    kernel.theta = params[:-1]
    noise = float(np.exp(params[-1]))
    K, dK = kernel.matrix_and_theta_gradients(X)
    n = len(y)
    K[np.diag_indices(n)] += noise
    try:
        L = cholesky(K, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(params)
    alpha = cho_solve((L, True), y, check_finite=False)
    value = 0.5 * y @ alpha + np.log(np.diag(L)).sum() + 0.5 * n * np.log(2.0 * np.pi)
    W = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n), check_finite=False)
    grad = np.empty_like(params)
    grad[:-1] = -0.5 * np.einsum("ij,kij->k", W, dK)
    grad[-1] = -0.5 * noise * np.trace(W)
    if prior is not None:
        sl = kernel.ordinal_lengthscales
        ls = np.exp(params[sl])
        value -= float(np.sum(prior.lnpdf(ls)))
        grad[sl] -= prior.lnpdf_grad(ls) * ls
    return value, grad


def posterior(kernel, X, y, noise):
    """Cholesky factor of K + noise I and the weights (K + noise I)^-1 y."""
    K, _ = kernel.matrix(X, X)
    K[np.diag_indices(len(y))] += noise
    L = cholesky(K, lower=True, check_finite=False)
    return L, solve_triangular(L.T, solve_triangular(L, y, lower=True, check_finite=False),
                               lower=False, check_finite=False)


def fit(X, y, ordinal, categorical, prior, noise_floor, n_restarts, rng):
    """Maximum a posteriori hyper-parameters from ``n_restarts`` starts (a fixed one, then
    random ones from ``rng``); returns ``(kernel, noise, value)``, ``value`` the minimised
    :func:`negative_log_posterior` (the first start's parameters and inf if every start
    failed)."""
    kernel = MixedKernel(ordinal, categorical)
    bounds = kernel.bounds() + [(np.log(noise_floor), 0.0)]
    best, best_value = None, np.inf
    for restart in range(max(int(n_restarts), 1)):
        start = MixedKernel(ordinal, categorical)
        if restart == 0:
            for name, value in (("a", 0.5), ("l_o", 0.3), ("b", 0.25), ("l_c", 1.0),
                                ("s", 0.5), ("l_cx", 1.0)):
                start.set(name, value)
            log_noise = np.log(max(1e-3, noise_floor))
        else:
            start.theta = rng.uniform(np.log(0.03), np.log(3.0), kernel.n_theta)
            for name in ("a", "b", "s"):
                start.set(name, np.exp(rng.uniform(np.log(0.1), np.log(1.0))))
            log_noise = rng.uniform(np.log(max(1e-5, noise_floor)), np.log(1e-1))
        x0 = np.clip(np.append(start.theta, log_noise), [b[0] for b in bounds],
                     [b[1] for b in bounds])
        with np.errstate(all="ignore"):
            res = scipy_minimize(negative_log_posterior, x0, jac=True, method="L-BFGS-B",
                                 bounds=bounds, args=(kernel, X, y, prior),
                                 options={"maxiter": _MAX_ITERS})
        if best is None:
            best = x0
        if np.isfinite(res.fun) and res.fun < best_value:
            best, best_value = res.x.copy(), float(res.fun)
    return MixedKernel(ordinal, categorical, best[:-1]), float(np.exp(best[-1])), best_value
