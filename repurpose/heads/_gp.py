"""Gaussian-process head: Dirichlet-based GP classification on a sparse GP (GPy kernels).

The method (Milios et al., 2018) turns classification into regression: each one-hot label
row plus a small ``alpha_eps`` is read as the parameters of a Dirichlet distribution, whose
Gamma-distributed components are approximated by log-normals. That gives, per class, a
Gaussian regression target ``y_tilde = log(alpha) - sigma2 / 2`` with a known, per-point
noise variance ``sigma2 = log(1 / alpha + 1)``: a *heteroscedastic* GP regression with
closed-form inference. Sampling the latent posterior and normalising ``exp(f)`` gives class
probabilities that are calibrated, unlike one-hot regression squashed after the fact.

Why this method here (and not a softmax likelihood by variational inference, or
one-vs-rest EP GPs renormalised by hand): the regression is conjugate, so the sparse
variational bound of Titsias (2009) is collapsed and exact given the kernel; the only
optimisation is over a handful of kernel hyper-parameters shared by the classes; and the
label noise takes only two values (the label's class, every other class), so the joint
bound over all classes costs about as much as one class (``O(N M^2)`` for ``M`` inducing
points). N=5,000, 512-d, 10 classes fits in about 10 s on two cores
(``benchmarks/gp_scaling.py``).
"""
import logging
import warnings

import numpy as np
from scipy.linalg import LinAlgError
from sklearn.exceptions import ConvergenceWarning

from .._gpy import quiet_gpy
from .._validation import (AnyOf, Integer, ListOf, Nullable, Options, Real, check_choice,
                           store_params)
from ..exceptions import InvalidParameterError
from ..persist import register
from ._base import BaseHead, fit_standardizer
from ._gp_bound import _latent_posterior, _mc_softmax, dirichlet_prior_mean, dirichlet_targets
from ._gp_kernel import (_cross_validated_log_loss, _inducing_inputs, _kernel_values,
                         _make_kernel, _median_distance, _model_class,
                         _select_by_leave_one_out)

logger = logging.getLogger(__name__)

__all__ = ["GpHead", "dirichlet_targets", "dirichlet_prior_mean"]

_KERNELS = ("rbf", "matern52")
#: Candidates of ``alpha_eps='auto'`` (log-spaced) and the first kernel fit's value.
_ALPHA_EPS_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
_ALPHA_EPS_START = 1e-2


@register
class GpHead(BaseHead):
    """Gaussian-process classification with calibrated probabilities (Dirichlet-based GP).

    Labels become Dirichlet concentrations ``onehot + alpha_eps``; their log-normal
    approximation turns classification into heteroscedastic GP regression, one latent
    function per class, solved exactly given the kernel by a sparse GP with ``n_inducing``
    inducing points (k-means centres of the standardised features). The classes share one
    kernel, whose hyper-parameters maximise the joint collapsed variational bound with
    GPy's L-BFGS. Probabilities are the posterior mean of ``softmax(f)``, estimated with
    ``n_mc_samples`` fixed Monte-Carlo draws of the latent posterior.

    Parameters
    ----------
    kernel : {'rbf', 'matern52'}, default='rbf'
        Stationary kernel of every feature block (isotropic: one lengthscale per block,
        which keeps the optimisation cheap and stable in hundreds of dimensions).
    n_inducing : int, default=200
        Number of inducing points; cost is ``O(n_samples * n_inducing**2)``. With fewer
        distinct training samples, all of them are used (an exact GP).
    feature_groups : tuple of int, default=None
        Sizes of consecutive column blocks of ``X`` (e.g. ``(512, 256)`` when the features
        of two layers are concatenated); each block gets its own kernel and the kernels
        are summed. ``None`` is one block of all columns.
    alpha_eps : float or 'auto', default='auto'
        Dirichlet concentration given to every class besides the label's one: how far the
        labels are trusted. Smaller values give sharper probabilities. ``'auto'`` picks it
        from ``1e-4 .. 0.3`` by 3-fold held-out log-loss (kernel fixed at a first fit with
        0.01, then refitted at the chosen value), which roughly doubles the fit time. When
        every training sample is an inducing point (an exact GP), it picks it by the
        closed-form leave-one-out log-loss instead, jointly with the kernel: the ML-II
        variance and lengthscale times ``(1, 4, 16)`` and ``(1, 1.5, 2, 3)``, kept as chosen.
    max_iter : int, default=100
        Most evaluations of the bound by L-BFGS in each kernel fit (0 keeps the initial
        guess: median-distance lengthscales).
    n_mc_samples : int, default=1000
        Monte-Carlo draws of the latent functions per prediction. The same draws (seeded
        at fit) are used for every sample and call, so ``predict_proba`` is a
        deterministic function of each row.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means inducing points, the lengthscale guess, the folds of
        ``alpha_eps='auto'`` and the Monte-Carlo draws.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels seen in fit; ``predict_proba`` columns follow them.
    n_features_in_ : int
        Number of features seen in fit.
    mean_ : ndarray of shape (n_features,)
        Training mean of each feature (the head standardises its input).
    scale_ : ndarray of shape (n_features,)
        Training standard deviation of each feature (1 for constant features).
    feature_groups_ : tuple of int
        The column blocks, one kernel each.
    alpha_eps_ : float
        The ``alpha_eps`` used (the chosen one for ``'auto'``).
    alpha_eps_log_loss_ : dict of float to float
        Held-out log-loss of each candidate of ``alpha_eps='auto'``; empty otherwise.
    inducing_points_ : ndarray of shape (n_inducing, n_features)
        Inducing inputs, in standardised feature space.
    kernel_variance_ : ndarray of shape (n_groups,)
        Fitted variance of each block's kernel.
    kernel_lengthscale_ : ndarray of shape (n_groups,)
        Fitted lengthscale of each block's kernel (standardised units).
    latent_mean_ : ndarray of shape (n_classes,)
        Constant prior mean of each class's latent function: the log class frequency
        plus a shared offset, so far from the data the probabilities are the class
        frequencies seen in fit.
    log_marginal_likelihood_ : float
        The collapsed variational bound at the fitted hyper-parameters, summed over classes.
    n_iter_ : int
        Evaluations of the bound made by the optimiser (both fits for ``'auto'``).
    n_mc_samples_ : int
        Monte-Carlo draws used by ``predict_proba`` (``n_mc_samples`` at fit time).
    mc_seed_ : int
        Seed of those draws.

    See Also
    --------
    LogisticHead : a faster, non-Bayesian head.

    Notes
    -----
    Why this method: it keeps the regression conjugate, so given the kernel the
    posterior is exact (for the sparse model) and costs ``O(N M^2)``; a softmax likelihood
    needs variational or EP approximations per class and far more optimisation. The label
    noise takes two values only (label's class or not), so the joint bound of all classes
    costs about as much as that of one.

    The per-block kernels are **summed**, not multiplied: a sum models the latent function
    as additive contributions from each layer, so a block can be switched off by its
    variance and the others still inform the prediction. A product of stationary kernels
    is small as soon as *any* block is far from the training data, so one noisy layer
    would make every point look novel.

    ``alpha_eps`` moves calibration more than anything else, and its best value depends on
    the data (clean, separated classes favour 1e-3 or less, noisy labels 0.03 to 0.1):
    with a fixed value, the head is under-confident on the former and over-confident on
    the latter. Hence ``'auto'``, which scores candidates on held-out folds. The bound
    itself cannot choose it: the regression targets change with it.

    Probabilities: the model's estimate ``E[exp(f_c) / sum_k exp(f_k)]`` under the
    Gaussian latent posterior has no closed form; it is estimated by Monte Carlo with
    common random numbers (one set of draws for every row), as in the paper's code. The
    closed-form alternative, normalising the log-normal means ``exp(mu_c + var_c / 2)``,
    ignores the shared denominator and was sharper than Monte Carlo on every problem we
    tried: better where the head was under-confident, worse where it was over-confident.
    Monte Carlo is the model's own answer, so it is used.

    The noise variances are fixed by the transformation; only the kernel variance and
    lengthscale of each block are optimised, and the inducing inputs stay at their
    k-means positions (optimising them costs ``n_inducing * n_features`` parameters).

    References
    ----------
    .. [1] D. Milios, R. Camoriano, P. Michiardi, L. Rosasco, M. Filippone.
       "Dirichlet-based Gaussian Processes for Large-scale Calibrated Classification".
       Advances in Neural Information Processing Systems 31 (NeurIPS), 2018.
    .. [2] M. Titsias. "Variational Learning of Inducing Variables in Sparse Gaussian
       Processes". AISTATS, 2009.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(60, centers=3, cluster_std=0.5, random_state=0)
    >>> head = GpHead(n_inducing=20, max_iter=30, random_state=0).fit(X, y)
    >>> head.predict(X[:3]), y[:3]
    (array([1, 0, 0]), array([1, 0, 0]))
    >>> head.predict_proba(X[:2]).round(2)
    array([[0., 1., 0.],
           [1., 0., 0.]])
    >>> far = X[:1] + 100.0
    >>> bool(head.predict_variance(far)[0] > head.predict_variance(X[:1])[0])
    True
    """

    _min_samples_per_class = 1

    #: The allowed values of each constructor parameter (checked by ``fit``; that
    #: ``feature_groups`` covers the columns of ``X`` is checked when ``X`` is known).
    _parameter_constraints = {
        "kernel": Options(*_KERNELS),
        "n_inducing": Integer(1),
        "feature_groups": Nullable(ListOf(Integer(1),
                                          "a tuple of block sizes (e.g. (512, 256))")),
        "alpha_eps": AnyOf(Options("auto"), Real(0, None, low_open=True),
                           what="'auto' or a positive number (e.g. 0.01)"),
        "max_iter": Integer(0),
        "n_mc_samples": Integer(1),
    }

    def __init__(self, kernel="rbf", n_inducing=200, feature_groups=None, alpha_eps="auto",
                 max_iter=100, n_mc_samples=1000, random_state=None):
        store_params(self, locals())

    def _feature_groups(self, n_features):
        """The column blocks (checked against ``n_features``), one kernel each."""
        groups = self._parameter_constraints["feature_groups"].check(self.feature_groups,
                                                                     "feature_groups")
        if groups is None:
            return (n_features,)
        if not groups or sum(groups) != n_features:
            raise InvalidParameterError(
                f"feature_groups={groups!r} covers {sum(groups)} features, but X has "
                f"{n_features} features. Give the sizes of the consecutive column blocks of "
                f"X (one per layer), summing to {n_features}.")
        return groups

    # ------------------------------------------------------------------ fit
    def _fit(self, X, y, n_classes, random_state):
        groups = self._feature_groups(X.shape[1])
        auto = isinstance(self.alpha_eps, str)
        eps = _ALPHA_EPS_START if auto else float(self.alpha_eps)
        self.mean_, self.scale_ = fit_standardizer(X)
        Xs = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        Z = _inducing_inputs(Xs, self.n_inducing, random_state)

        # Initial guess: median-distance lengthscale per block, the targets' variance
        # shared among blocks.
        y_tilde, _ = dirichlet_targets(y, n_classes, eps)
        bounds = np.cumsum((0,) + groups)
        lengthscales = [_median_distance(Xs[:, bounds[g]:bounds[g + 1]], random_state)
                        or np.sqrt(groups[g]) for g in range(len(groups))]
        variances = np.full(len(groups), max(float(np.var(y_tilde)), 1e-3) / len(groups))

        kern, bound, n_iter, statuses = self._fit_kernel(
            variances, lengthscales, groups, Xs, Z, y, n_classes, eps)
        self.alpha_eps_log_loss_ = {}
        if auto:
            eps, (kern, bound, more, more_statuses) = self._choose_alpha_eps(
                kern, bound, groups, Xs, Z, y, n_classes, eps, random_state)
            n_iter += more
            statuses += more_statuses
        if any(status.startswith("Maximum") for status in statuses):
            warnings.warn(
                f"GpHead's kernel optimisation stopped after max_iter={self.max_iter} "
                f"evaluations before converging; raise max_iter for a better fit (the "
                f"model is still a valid GP with the current hyper-parameters).",
                ConvergenceWarning, stacklevel=3)

        self.feature_groups_ = groups
        self.alpha_eps_ = float(eps)
        self.kernel_variance_, self.kernel_lengthscale_ = _kernel_values(kern, groups)
        self.inducing_points_ = Z
        self.latent_mean_ = dirichlet_prior_mean(y, n_classes, eps)
        self.log_marginal_likelihood_ = bound.value
        self.n_iter_ = n_iter
        self._kernel_name = self.kernel
        self.n_mc_samples_ = int(self.n_mc_samples)
        self.mc_seed_ = int(random_state.randint(np.iinfo(np.int32).max))
        self._weights = bound.weights
        self._chol_kmm = bound.chol_kmm
        self._chol_sigma = bound.chol_sigma
        logger.info("GpHead fitted: %d samples, %d classes, %d inducing points, "
                    "alpha_eps %g, bound %.6g after %d evaluations", len(y), n_classes,
                    len(Z), eps, bound.value, n_iter)

    def _choose_alpha_eps(self, kern, bound, groups, Xs, Z, y, n_classes, eps, random_state):
        """``alpha_eps='auto'``: score the grid, then refit at the best value.

        ``kern`` and ``bound`` come from the fit at ``eps``. Sets ``alpha_eps_log_loss_``
        and returns ``(eps, (kern, bound, n_iter, statuses))``, the last four from the
        refit (the given fit, 0 and [] when the best value is ``eps`` itself).
        """
        if len(Z) == len(Xs):
            # Every training point is an inducing point: the GP is exact, and at such sizes
            # ML-II on the Dirichlet regression targets is a poor guide to the
            # *classification* loss. It picks lengthscales short against the distances
            # between points (about 0.65x the median distance in 128-d at 50 points), so
            # test points keep most of the prior variance; with a large kernel variance
            # the Monte-Carlo softmax then approaches P(argmax), which depends on the
            # ratio of mean gap to spread only, so alpha_eps can no longer sharpen it and
            # the head is under-confident. Leave-one-out is closed-form for an exact GP
            # (no refit, every point held out once, far less noisy than 3 folds of a few
            # dozen points), so it scores the kernel too, not only alpha_eps: the ML-II
            # kernel with its variance and lengthscale scaled up (smoother, farther
            # reaching functions), as a predictive criterion for hyper-parameters
            # (Rasmussen & Williams, 2006, sec. 5.4.2). The ML-II kernel is a candidate,
            # so where the bound already predicts well nothing changes.
            variances, lengthscales, eps, scores = _select_by_leave_one_out(
                self.kernel, kern, groups, Xs, y, n_classes, _ALPHA_EPS_GRID, random_state)
            self.alpha_eps_log_loss_ = dict(zip(_ALPHA_EPS_GRID, scores.tolist()))
            logger.info("GpHead alpha_eps='auto': leave-one-out log-loss %s; chose %g, "
                        "kernel variance %s, lengthscale %s",
                        ", ".join(f"{e:g}: {v:.4f}" for e, v in
                                  self.alpha_eps_log_loss_.items()), eps, variances,
                        lengthscales)
            return eps, self._fit_kernel(variances, lengthscales, groups, Xs, Z, y, n_classes,
                                         eps, optimise=False)
        scores = _cross_validated_log_loss(kern, Xs, Z, y, n_classes, _ALPHA_EPS_GRID,
                                           random_state)
        self.alpha_eps_log_loss_ = dict(zip(_ALPHA_EPS_GRID, scores.tolist()))
        best = _ALPHA_EPS_GRID[int(np.argmin(scores))]
        logger.info("GpHead alpha_eps='auto': held-out log-loss %s; chose %g",
                    ", ".join(f"{e:g}: {v:.4f}" for e, v in
                              self.alpha_eps_log_loss_.items()), best)
        if best == eps:
            return eps, (kern, bound, 0, [])
        return best, self._fit_kernel(*_kernel_values(kern, groups), groups, Xs, Z, y,
                                      n_classes, best)

    def _fit_kernel(self, variances, lengthscales, groups, Xs, Z, y, n_classes, eps,
                    optimise=True):
        """Maximise the bound over the kernel from the given start; return the results.

        With ``optimise=False`` the kernel is kept as given (chosen by leave-one-out).
        """
        kern = _make_kernel(self.kernel, groups, variances, lengthscales)
        n_iter, status = 0, "not run"
        try:
            with quiet_gpy():
                model = _model_class()(kern, Xs, Z, y,
                                       dirichlet_prior_mean(y, n_classes, eps), eps)
                if optimise and self.max_iter > 0:
                    opt = model.optimize(optimizer="lbfgsb", max_iters=self.max_iter,
                                         messages=False)
                    n_iter, status = int(opt.funct_eval), str(opt.status)
                    model.parameters_changed()   # the bound and factors at the final point
        except LinAlgError as err:
            raise LinAlgError(
                f"GpHead could not fit its kernel (alpha_eps={eps:g}, {len(Z)} inducing "
                f"points): {err} Check X for duplicated or huge columns, or lower "
                f"n_inducing.") from err
        bound = model.bound
        if not np.isfinite(bound.value):
            raise FloatingPointError(
                f"GpHead's variational bound is not finite ({bound.value}) after fitting "
                f"with alpha_eps={eps:g}; the features may be degenerate. Check X for "
                f"huge or duplicated columns.")
        if status.startswith("Error"):
            logger.info("GpHead: L-BFGS ended on %s after %d evaluations (bound %.6g); "
                        "usually a line search limited by floating-point precision near "
                        "the optimum.", status, n_iter, bound.value)
        logger.debug("GpHead kernel fit (alpha_eps %g): %s after %d evaluations, bound "
                     "%.6g", eps, status, n_iter, bound.value)
        return model.kern, bound, n_iter, [status]

    # ------------------------------------------------------------------ predict
    def _latent(self, X):
        """Latent posterior mean and variance (n, n_classes) for validated ``X``."""
        kern = _make_kernel(self._kernel_name, self.feature_groups_,
                            self.kernel_variance_, self.kernel_lengthscale_)
        Xs = (np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_
        with quiet_gpy():
            Kxm = kern.K(Xs, self.inducing_points_)
            kxx = kern.Kdiag(Xs)
        return _latent_posterior(Kxm, kxx, self._weights, self.latent_mean_,
                                 self._chol_kmm, self._chol_sigma)

    def _predict_proba(self, X):
        mu, var = self._latent(X)
        z = np.random.RandomState(self.mc_seed_).standard_normal(
            (self.n_mc_samples_, len(self.classes_)))
        return _mc_softmax(mu, var, z)

    def predict_latent(self, X):
        """Posterior mean and variance of each class's latent function.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        mean : ndarray of shape (n_samples, n_classes)
            Columns follow :attr:`classes_`.
        var : ndarray of shape (n_samples, n_classes)
            Posterior variance of the latent function (without the label noise); it grows
            to the summed kernel variances away from the training data.
        """
        return self._latent(self._validate_X_predict(X))

    def predict_variance(self, X):
        """Predictive uncertainty of each sample: the latent variance averaged over classes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Small near the training data, up to the summed kernel variances far from it.
        """
        return self.predict_latent(X)[1].mean(axis=1)

    # ------------------------------------------------------------------ state
    def _get_fitted_state(self):
        state = {"kernel": self._kernel_name, "feature_groups": list(self.feature_groups_),
                 "alpha_eps": self.alpha_eps_,
                 "alpha_eps_log_loss": [[e, v] for e, v in self.alpha_eps_log_loss_.items()],
                 "log_marginal_likelihood": self.log_marginal_likelihood_,
                 "n_iter": self.n_iter_, "mc_seed": self.mc_seed_,
                 "n_mc_samples": self.n_mc_samples_}
        arrays = {"mean_": self.mean_, "scale_": self.scale_,
                  "inducing_points_": self.inducing_points_,
                  "kernel_variance_": self.kernel_variance_,
                  "kernel_lengthscale_": self.kernel_lengthscale_,
                  "latent_mean_": self.latent_mean_, "weights": self._weights,
                  "chol_kmm": self._chol_kmm, "chol_sigma": self._chol_sigma}
        return state, arrays

    def _set_fitted_state(self, state, arrays):
        self._kernel_name = check_choice(state["kernel"], "saved GpHead kernel", _KERNELS)
        self.feature_groups_ = tuple(int(s) for s in state["feature_groups"])
        self.alpha_eps_ = float(state["alpha_eps"])
        self.alpha_eps_log_loss_ = {float(e): float(v) for e, v in state["alpha_eps_log_loss"]}
        self.log_marginal_likelihood_ = float(state["log_marginal_likelihood"])
        self.n_iter_ = int(state["n_iter"])
        self.mc_seed_ = int(state["mc_seed"])
        self.n_mc_samples_ = int(state["n_mc_samples"])
        for name in ("mean_", "scale_", "inducing_points_", "kernel_variance_",
                     "kernel_lengthscale_", "latent_mean_"):
            setattr(self, name, np.asarray(arrays[name], dtype=np.float64))
        self._weights = np.asarray(arrays["weights"], dtype=np.float64)
        self._chol_kmm = np.asarray(arrays["chol_kmm"], dtype=np.float64)
        self._chol_sigma = np.asarray(arrays["chol_sigma"], dtype=np.float64)
