"""The arithmetic of the Dirichlet-based GP head (:mod:`._gp`), in numpy and scipy only.

The regression targets and prior mean of the Dirichlet-based method (Milios et al., 2018),
the collapsed sparse-GP bound of all classes with its gradients and posterior factors
(Titsias, 2009), the latent posterior at new inputs and the Monte-Carlo softmax.
"""
import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular

__all__ = ["dirichlet_targets", "dirichlet_prior_mean"]

#: Elements of the Monte-Carlo tensor (rows x draws x classes) held at once in prediction.
_PREDICT_CHUNK_ELEMENTS = 2 ** 22
#: Jitter added to Kmm, relative to its mean diagonal.
_KMM_JITTER = 1e-8


def dirichlet_targets(y, n_classes, alpha_eps):
    """Regression targets and noise variances of Dirichlet-based GP classification.

    Each label ``y[i]`` becomes ``alpha = onehot(y[i]) + alpha_eps``; the log-normal
    approximation of the Gamma variable ``Gamma(alpha, 1)`` has log-variance
    ``sigma2 = log(1 / alpha + 1)`` and log-mean ``y_tilde = log(alpha) - sigma2 / 2``.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Integer labels in ``0 .. n_classes - 1``.
    n_classes : int
    alpha_eps : float
        Dirichlet concentration added to every class (> 0).

    Returns
    -------
    y_tilde : ndarray of shape (n_samples, n_classes)
    noise_var : ndarray of shape (n_samples, n_classes)

    References
    ----------
    .. [1] D. Milios, R. Camoriano, P. Michiardi, L. Rosasco, M. Filippone. "Dirichlet-based
       Gaussian Processes for Large-scale Calibrated Classification". NeurIPS 2018.

    Examples
    --------
    >>> y_tilde, noise_var = dirichlet_targets(np.array([0, 1]), 2, 0.01)
    >>> noise_var.round(3)
    array([[0.688, 4.615],
           [4.615, 0.688]])
    """
    alpha = np.full((len(y), n_classes), float(alpha_eps))
    alpha[np.arange(len(y)), y] += 1.0
    noise_var = np.log(1.0 / alpha + 1.0)
    return np.log(alpha) - noise_var / 2.0, noise_var


def _cholesky(K, what, min_jitter=0.0):
    """Lower Cholesky factor of ``K`` plus jitter x its mean diagonal.

    The jitter starts at ``min_jitter`` and grows (up to 1e-2) until the factorisation
    succeeds, as GPy's ``jitchol`` does.
    """
    scale = max(float(np.mean(np.diag(K))), 1e-300)
    for jitter in sorted({min_jitter, 1e-8, 1e-6, 1e-4, 1e-2}):
        if jitter < min_jitter:
            continue
        try:
            return cholesky(K + jitter * scale * np.eye(len(K)), lower=True, check_finite=False)
        except LinAlgError:
            continue
    raise LinAlgError(f"{what} is not positive definite even with jitter 1e-2 x its mean "
                      f"diagonal ({scale:.3g}); the kernel hyper-parameters are degenerate.")


def dirichlet_prior_mean(y, n_classes, alpha_eps):
    """Constant prior mean of each class's latent function, as in Milios et al. (2018).

    ``log(frequency_c)`` plus one constant shared by the classes that centres the
    targets: far from the training data, ``softmax(f)`` then returns the class
    frequencies of the training set.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Integer labels in ``0 .. n_classes - 1``.
    n_classes : int
    alpha_eps : float

    Returns
    -------
    ndarray of shape (n_classes,)

    Examples
    --------
    >>> m = dirichlet_prior_mean(np.array([0, 0, 0, 1]), 2, 0.01)
    >>> float(np.round(m[0] - m[1], 6)) == float(np.round(np.log(3), 6))
    True
    """
    y_tilde, _ = dirichlet_targets(y, n_classes, alpha_eps)
    log_freq = np.log(np.bincount(y, minlength=n_classes) / len(y))
    return log_freq + np.mean(y_tilde - log_freq)


class _Bound:
    """The collapsed sparse-GP bound of all classes, its gradients and posterior factors.

    For class ``c`` with targets ``y_c``, noise precisions ``beta_c`` (``beta_hi`` on the
    points labelled ``c``, ``beta_lo`` elsewhere) and the constant prior mean ``m_c``,
    the bound of Titsias (2009) with heteroscedastic noise is::

        F_c = log N(y_c - m_c | 0, Qnn + diag(1/beta_c)) - 1/2 sum_n beta_cn (k_nn - q_nn)

    with ``Qnn = Knm Kmm^-1 Kmn``; the classes share the kernel, so ``F = sum_c F_c``.
    In whitened form, ``A = Lm^-1 Kmn`` and ``B_c = I + A diag(beta_c) A'``; because
    ``beta_c`` takes two values, ``B_c = I + beta_lo A A' + (beta_hi - beta_lo) A_c A_c'``
    (``A_c``: the columns of class ``c``), so the classes share one ``O(N M^2)`` product
    and the rest costs ``O(N M^2 + C M^3)`` in all. The matrix gradients follow GPy's
    ``VarDTC`` conventions (``dL_dKmm``, ``dL_dKnm``, ``dL_dKdiag``).
    """

    def __init__(self, Kmm, Knm, Kdiag, y, mean, alpha_eps, gradients=True):
        n, m = Knm.shape
        n_classes = len(mean)
        y_tilde, noise_var = dirichlet_targets(np.array([0]), 2, alpha_eps)
        t_hi, t_lo = y_tilde[0]
        s_hi, s_lo = noise_var[0]
        b_hi, b_lo = 1.0 / s_hi, 1.0 / s_lo
        d_b = b_hi - b_lo
        members = [np.flatnonzero(y == c) for c in range(n_classes)]

        # Inducing points close in the kernel's metric make Kmm nearly singular: a small
        # relative jitter (GPy and GPflow add one too) keeps A = Lm^-1 Kmn accurate.
        Lm = _cholesky(Kmm, "The inducing-point covariance Kmm", min_jitter=_KMM_JITTER)
        A = solve_triangular(Lm, Knm.T, lower=True, check_finite=False)      # (M, N)
        AAt = A @ A.T
        eye = np.eye(m)
        value = 0.0
        H = np.zeros((m, m))            # sum_c (B_c^-1 + B_c + v_c v_c' - 2 I)
        S = np.zeros((m, m))            # sum_c (I - B_c^-1)
        E = np.empty((n, n_classes))    # beta_c * (r_c - A' v_c), column per class
        V = np.empty((m, n_classes))    # whitened posterior weights v_c = B_c^-1 A beta_c r_c
        L_B, B_inv = [], []
        for c, idx in enumerate(members):
            A_c = A[:, idx]
            n_c = len(idx)
            B = eye + b_lo * AAt + d_b * (A_c @ A_c.T)
            LB = _cholesky(B, f"The posterior precision of class {c}")
            beta = np.full(n, b_lo)
            beta[idx] = b_hi
            r = np.full(n, t_lo - mean[c])
            r[idx] = t_hi - mean[c]
            ib = solve_triangular(LB, A @ (beta * r), lower=True, check_finite=False)
            v = solve_triangular(LB.T, ib, lower=False, check_finite=False)
            log_noise = np.log(s_lo) * (n - n_c) + np.log(s_hi) * n_c
            value += (-0.5 * n * np.log(2 * np.pi) - 0.5 * log_noise
                      - np.sum(np.log(np.diag(LB))) - 0.5 * np.sum(beta * r * r)
                      + 0.5 * ib @ ib - 0.5 * np.sum(beta * Kdiag) + 0.5 * (np.trace(B) - m))
            Binv = solve_triangular(LB.T, solve_triangular(LB, eye, lower=True,
                                                           check_finite=False),
                                    lower=False, check_finite=False)
            H += Binv + B + np.outer(v, v) - 2 * eye
            S += eye - Binv
            E[:, c] = beta * (r - A.T @ v)
            V[:, c] = v
            L_B.append(LB)
            B_inv.append(Binv)
        self.value = float(value)
        if gradients:
            # dF/dKnm = [sum_c diag(beta_c) A' (I - B_c^-1) + E V'] Lm^-1.
            G = b_lo * (A.T @ S) + E @ V.T
            for c, idx in enumerate(members):
                G[idx] += d_b * (A[:, idx].T @ (eye - B_inv[c]))
            self.dL_dKnm = solve_triangular(Lm, G.T, lower=True, trans="T",
                                            check_finite=False).T
            # dF/dKmm = -1/2 Lm^-T H Lm^-1.
            half = solve_triangular(Lm, H, lower=True, trans="T", check_finite=False)
            self.dL_dKmm = -0.5 * solve_triangular(Lm, half.T, lower=True, trans="T",
                                                   check_finite=False).T
            self.dL_dKdiag = np.full(n, -0.5 * (n_classes * b_lo + d_b))
        # Prediction: mean = K*m W + m, var = k** - |Lm^-1 km*|^2 + |(Lm L_Bc)^-1 km*|^2.
        self.chol_kmm = Lm
        self.chol_sigma = np.stack([Lm @ LB for LB in L_B])                  # (C, M, M)
        self.weights = solve_triangular(Lm.T, V, lower=False, check_finite=False)


def _latent_posterior(Kxm, kxx, weights, mean, chol_kmm, chol_sigma):
    """Latent mean and variance (n, C) at inputs with cross-covariance ``Kxm`` (n, M).

    ``mean = Kxm W + m`` and ``var = k(x, x) - |Lm^-1 k_m(x)|^2 + |L_c^-1 k_m(x)|^2``, where
    ``L_c`` is the Cholesky factor of ``Kmm + Kmn diag(beta_c) Knm``: the predictive
    equations of the sparse GP (Titsias, 2009), with triangular solves instead of the
    difference of two inverses, which loses precision when ``Kmm`` is ill-conditioned.
    """
    mu = Kxm @ weights + mean
    explained = np.sum(solve_triangular(chol_kmm, Kxm.T, lower=True,
                                        check_finite=False) ** 2, axis=0)
    var = np.empty_like(mu)
    for c in range(mu.shape[1]):
        kept = np.sum(solve_triangular(chol_sigma[c], Kxm.T, lower=True,
                                       check_finite=False) ** 2, axis=0)
        var[:, c] = kxx - explained + kept
    # Rounding can leave tiny negative values where the data pin f down.
    return mu, np.maximum(var, 1e-12 * kxx[:, None])


def _mc_softmax(mu, var, z):
    """``E[softmax(f)]`` for ``f ~ N(mu, diag(var))`` per row, with the draws ``z`` (S, C).

    Every row uses the same standard-normal draws (common random numbers), so a row's
    probabilities depend on that row only, not on the batch it comes in.
    """
    sd = np.sqrt(var)
    out = np.empty_like(mu)
    chunk = max(1, _PREDICT_CHUNK_ELEMENTS // z.size)
    for start in range(0, len(mu), chunk):
        rows = slice(start, start + chunk)
        f = mu[rows, None, :] + sd[rows, None, :] * z[None, :, :]            # (n, S, C)
        f -= f.max(axis=2, keepdims=True)
        e = np.exp(f)
        out[rows] = np.mean(e / e.sum(axis=2, keepdims=True), axis=1)
    return out / out.sum(axis=1, keepdims=True)
