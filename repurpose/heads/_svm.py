"""Support-vector-machine head with calibrated probabilities.

One binary SVM per class (one-vs-rest) gives a decision vector per sample; ``predict`` is its
argmax. Probabilities are a softmax of the decision values times one positive scale, fitted
by maximum likelihood on *cross-validated* decision values (Platt scaling without the offset,
shared by all classes: temperature scaling of the SVM). One shared scale keeps the argmax of
the probabilities that of the decision values, so calibration never changes a prediction,
and one number cannot overfit the few held-out decisions of a few-shot task. Each binary SVM
is kept as its support vectors, dual coefficients and intercept, so predictions are computed
here from plain arrays: that is what makes the head saveable as JSON + arrays without
pickling scikit-learn's libsvm objects, whose state is private.
"""
import inspect
import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.svm import SVC, LinearSVC

from .._validation import AnyOf, Integer, Options, Real, store_params
from ..persist import register
from ._base import BaseHead, fit_standardizer, softmax

logger = logging.getLogger(__name__)

__all__ = ["SvmHead"]

KERNELS = ("rbf", "linear")


class _OvrSvm:
    """K binary SVMs as arrays: decision values from support vectors (rbf) or weights (linear)."""

    def __init__(self, kernel, C, gamma, max_iter, random_state):
        self.kernel, self.C, self.gamma = kernel, C, gamma
        self.max_iter, self.random_state = max_iter, random_state

    def fit(self, X, y, n_classes):
        self.parts = []
        targets = range(n_classes) if n_classes > 2 else [1]
        for k in targets:
            yk = (y == k).astype(int)
            if self.kernel == "linear":
                # dual="auto" solves the primal when n_samples > n_features, which converges
                # in tens of iterations where the dual needs thousands.
                model = LinearSVC(C=self.C, dual="auto", max_iter=self.max_iter,
                                  random_state=self.random_state)
                model.fit(X, yk)
                self.n_iter = max(getattr(self, "n_iter", 0), int(np.max(model.n_iter_)))
                self.parts.append((model.coef_[0], float(model.intercept_[0])))
            else:
                model = SVC(C=self.C, kernel="rbf", gamma=self.gamma, max_iter=-1)
                model.fit(X, yk)
                self.n_iter = max(getattr(self, "n_iter", 0), int(np.max(model.n_iter_)))
                self.parts.append((model.support_vectors_, model.dual_coef_[0],
                                   float(model.intercept_[0])))
        return self

    def decision(self, X):
        if len(X) == 0:
            return np.zeros((0, len(self.parts)))
        columns = []
        for part in self.parts:
            if self.kernel == "linear":
                weights, intercept = part
                columns.append(X @ weights + intercept)
            else:
                vectors, dual, intercept = part
                columns.append(rbf_kernel(X, vectors, gamma=self.gamma) @ dual + intercept)
        return np.column_stack(columns)


def _fit_shared_scale(decisions, y):
    """The positive scale ``a`` that maximises the likelihood of ``y`` under
    ``softmax(a * decisions)`` (one column: ``sigmoid(a * decision)``, Platt scaling without
    its offset).

    A weak Gaussian prior on ``log a`` (around ``a = 1``) keeps the scale finite when the
    decisions separate the classes perfectly. One number fitted on the cross-validated
    decisions; see the module docstring for why not one slope and offset per class.
    """
    from scipy.optimize import minimize_scalar

    if decisions.shape[1] == 1:  # two classes: the decision is the log-odds of class 1
        decisions = np.column_stack([np.zeros(len(decisions)), decisions[:, 0]])
    picked = decisions[np.arange(len(y)), y]

    def nll(log_a):
        z = decisions * np.exp(log_a)
        top = z.max(axis=1)
        log_norm = top + np.log(np.exp(z - top[:, None]).sum(axis=1))
        return np.mean(log_norm - picked * np.exp(log_a)) + 1e-3 * log_a ** 2

    return float(np.exp(minimize_scalar(nll, bounds=(-10.0, 10.0), method="bounded").x))


#: Held-out decisions the calibration aims for: the cross-validation is repeated (with
#: other folds, at most 5 times) until this many are pooled, so a few-shot task fits its
#: scale on more than one noisy split.
_CALIBRATION_SAMPLES = 100
_MAX_REPEATS = 5


@register
class SvmHead(BaseHead):
    """Support vector machine with probabilities calibrated on cross-validated decisions.

    ``predict`` is the argmax of the one-vs-rest decision values; ``predict_proba`` is
    ``softmax(a * decision values)`` with one positive scale ``a`` fitted on
    cross-validated decisions, so its argmax is the same.

    Parameters
    ----------
    C : float, default=1.0
        Penalty of the margin violations.
    kernel : {'rbf', 'linear'}, default='rbf'
        ``'linear'`` trains in the primal with liblinear: the path for large numbers of
        samples.
    gamma : 'scale' or float, default='scale'
        RBF width; ``'scale'`` is 1 / (n_features * variance of the standardised X), which
        is 1 / n_features after standardisation.
    n_folds : int, default=3
        Folds of the cross-validation that produces the decisions the calibration scale is
        fitted on. Reduced to the sample count of the smallest class if that is lower
        (every fold needs a sample of every class): silently for the default, with a
        ``UserWarning`` for a value you set. With fewer than 100 samples the
        cross-validation is repeated with other folds (up to 5 times) to pool more
        decisions.
    standardize : bool, default=True
    max_iter : int, default=10000
        Iterations of liblinear (``kernel='linear'``).
    random_state : int, RandomState or None, default=None
        Folds of the calibration and liblinear's coordinate order.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    gamma_ : float
        The RBF width used.
    n_iter_ : int
        Most iterations any of the binary SVMs took.
    calibration_coef_, calibration_intercept_ : ndarray of shape (n_classes,) (1 for 2 classes)
        The calibration map from decision values to logits, ``coef * d + intercept`` per
        class: the shared scale ``a`` in every entry, and zeros. (Heads saved by earlier
        releases hold one fitted slope and offset per class, and predict as they did.)

    References
    ----------
    .. [1] J. Platt. "Probabilistic outputs for support vector machines and comparisons to
       regularized likelihood methods". Advances in Large Margin Classifiers, 1999.
    .. [2] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. "On Calibration of Modern Neural
       Networks". ICML 2017 (temperature scaling).

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, y = make_blobs(60, centers=3, cluster_std=0.5, random_state=0)
    >>> head = SvmHead(random_state=0).fit(X, y)
    >>> head.score(X, y) > 0.9
    True
    """

    _min_samples_per_class = 2

    #: The allowed values of each constructor parameter (checked by ``fit``).
    _parameter_constraints = {
        "C": Real(0, None, low_open=True),
        "kernel": Options(*KERNELS),
        "gamma": AnyOf(Options("scale"), Real(0, None, low_open=True),
                       what="'scale' or a positive number"),
        "n_folds": Integer(2),
    }

    def __init__(self, C=1.0, kernel="rbf", gamma="scale", n_folds=3, standardize=True,
                 max_iter=10000, random_state=None):
        store_params(self, locals())

    def _fit(self, X, y, n_classes, random_state):
        self.mean_, self.scale_ = fit_standardizer(X, enabled=self.standardize)
        Xs = (X - self.mean_) / self.scale_
        variance = Xs.var()
        self.gamma_ = float(1.0 / (X.shape[1] * variance) if self.gamma == "scale" and variance > 0
                            else 1.0 if self.gamma == "scale" else self.gamma)
        seed = int(random_state.randint(0, 2**31 - 1))
        make = lambda: _OvrSvm(self.kernel, self.C, self.gamma_, self.max_iter, seed)  # noqa: E731
        n_folds = self._calibration_folds(y)
        repeats = min(_MAX_REPEATS, -(-_CALIBRATION_SAMPLES // len(y)))
        decisions, targets = [], []
        folds = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=repeats, random_state=seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            for train, test in folds.split(Xs, y):
                decisions.append(make().fit(Xs[train], y[train], n_classes).decision(Xs[test]))
                targets.append(y[test])
            self._svm = make().fit(Xs, y, n_classes)
            self.n_iter_ = self._svm.n_iter
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            warnings.warn(f"SvmHead's liblinear did not converge in max_iter={self.max_iter}; "
                          f"raise max_iter or lower C.", ConvergenceWarning, stacklevel=3)
        scale = _fit_shared_scale(np.concatenate(decisions), np.concatenate(targets))
        n_columns = n_classes if n_classes > 2 else 1
        self.calibration_coef_ = np.full(n_columns, scale)
        self.calibration_intercept_ = np.zeros(n_columns)

    def _calibration_folds(self, y):
        """``n_folds``, lowered to the smallest class's count (stratified folds need a sample
        of each class); lowering a value the user set is warned about."""
        counts = np.bincount(y)
        n_folds = min(self.n_folds, int(counts.min()))
        default = inspect.signature(SvmHead.__init__).parameters["n_folds"].default
        if n_folds < self.n_folds and self.n_folds != default:
            smallest = self.classes_[int(np.argmin(counts))]
            warnings.warn(
                f"SvmHead(n_folds={self.n_folds}): the calibration uses {n_folds} folds "
                f"instead, because class {smallest!r} has only {n_folds} samples and every "
                f"stratified fold needs one sample of each class. Pass n_folds <= {n_folds} "
                f"to silence this.", UserWarning, stacklevel=4)
        return n_folds

    def decision_function(self, X):
        """Calibrated logits (the decision values times the fitted scale): shape
        (n_samples, n_classes), or (n_samples,) for 2 classes (the log-odds of
        ``classes_[1]``). Their argmax is ``predict``."""
        z = self._logits(self._validate_X_predict(X))
        return z[:, 0] if z.shape[1] == 1 else z

    def svm_decision_function(self, X):
        """Raw one-vs-rest SVM decision values, before calibration."""
        X = self._validate_X_predict(X)
        return self._svm.decision((X - self.mean_) / self.scale_)

    def _logits(self, X):
        decisions = self._svm.decision((X - self.mean_) / self.scale_)
        return decisions * self.calibration_coef_ + self.calibration_intercept_

    def _predict_proba(self, X):
        z = self._logits(X)
        if z.shape[1] == 1:
            p = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.column_stack([1 - p, p])
        return softmax(z)

    def _get_fitted_state(self):
        arrays = {"mean_": self.mean_, "scale_": self.scale_,
                  "calibration_coef_": self.calibration_coef_,
                  "calibration_intercept_": self.calibration_intercept_}
        for i, part in enumerate(self._svm.parts):
            for j, value in enumerate(part):
                arrays[f"svm{i}_{j}"] = np.asarray(value)
        return {"gamma_": self.gamma_, "n_parts": len(self._svm.parts),
                "n_iter_": self.n_iter_}, arrays

    def _set_fitted_state(self, state, arrays):
        for name in ("mean_", "scale_", "calibration_coef_", "calibration_intercept_"):
            setattr(self, name, arrays[name])
        self.gamma_ = float(state["gamma_"])
        self.n_iter_ = int(state["n_iter_"])
        svm = _OvrSvm(self.kernel, self.C, self.gamma_, self.max_iter, None)
        n_values = 2 if self.kernel == "linear" else 3
        svm.parts = [tuple(arrays[f"svm{i}_{j}"] if j < n_values - 1
                           else float(arrays[f"svm{i}_{j}"]) for j in range(n_values))
                     for i in range(state["n_parts"])]
        self._svm = svm
